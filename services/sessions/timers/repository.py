"""Every query on the timers table: the scheduler's hot path.

Due work is found through the partial index on ``due_at`` over unfired rows
only, so the cost of a pass depends on how much is due, never on how many
schedules exist. Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
replicas split the due rows between them instead of queueing on each other;
SQLite ignores the clause and serialises writers instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.sessions.models import Timer
from shared import tracing
from shared.context import current_correlation_id, current_event_id
from shared.db import core

_TIMERS: Table = Timer.__table__  # type: ignore[assignment]


def _insert_new_timers(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_TIMERS).on_conflict_do_nothing(index_elements=["id"])


INSERT_NEW_TIMERS = {dialect: _insert_new_timers(dialect) for dialect in ("postgresql", "sqlite")}
"""Planned timers, one executemany; a timer whose id exists (planned or fired) stays as it is."""
MARK_UNFIRED_FIRED = (
    update(_TIMERS)
    .where(_TIMERS.c.id.in_(bindparam("ids", expanding=True)), _TIMERS.c.fired_at.is_(None))
    .values(
        fired_at=bindparam("fired_now"), fired_by=bindparam("fired_by_"), late=bindparam("late_")
    )
)


@dataclass(frozen=True, slots=True)
class NewTimer:
    id: str
    tenant_id: str
    goal_id: str
    kind: str
    level: int
    due_at: datetime
    occurrence_id: str | None = None
    session_id: str | None = None
    note: str | None = None
    # Planned while handling a request or an event: the timer's event continues its chain.
    correlation_id: str | None = field(default_factory=current_correlation_id)
    causation_id: str | None = field(default_factory=current_event_id)
    # Hours may pass before it fires: the firing's span links to this planning trace.
    traceparent: str | None = field(default_factory=tracing.current_traceparent)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "goal_id": self.goal_id,
            "kind": self.kind,
            "level": self.level,
            "due_at": self.due_at,
            "occurrence_id": self.occurrence_id,
            "session_id": self.session_id,
            "note": self.note,
            "fired_at": None,
            "fired_by": None,
            "late": False,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "traceparent": self.traceparent,
        }


class TimerRepository:
    """Timer queries; new timers are buffered and written in one statement.

    Firing a batch plans hundreds of timers; writing them as they come would
    cost a round trip each. Every read or change of timers writes the buffer
    first, so nothing in the transaction can miss a planned timer, and the
    owner of the transaction calls :meth:`flush` before it commits.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        bind = session.bind
        self._dialect = bind.dialect.name if bind is not None else "sqlite"
        self._pending: dict[str, NewTimer] = {}

    def insert(self, timers: Sequence[NewTimer]) -> None:
        """Plan timers; one whose id exists (planned or already fired) stays as it is."""
        for timer in timers:
            self._pending.setdefault(timer.id, timer)

    async def flush(self) -> None:
        if not self._pending:
            return
        rows = [timer.row() for timer in self._pending.values()]
        self._pending.clear()
        await core.execute(self.session, INSERT_NEW_TIMERS[self._dialect], rows)

    async def claim_due(
        self, now: datetime, limit: int, *, only: Sequence[str] | None = None
    ) -> Sequence[Timer]:
        """Unfired timers due by ``now``, oldest first, locked for this transaction."""
        await self.flush()
        query = select(Timer).where(Timer.fired_at.is_(None), Timer.due_at <= now)
        if only is not None:
            query = query.where(Timer.id.in_(list(only)))
        query = query.order_by(Timer.due_at, Timer.id).limit(limit)
        return (await self.session.execute(query.with_for_update(skip_locked=True))).scalars().all()

    async def due_ids(self, now: datetime, limit: int) -> list[str]:
        query = (
            select(Timer.id)
            .where(Timer.fired_at.is_(None), Timer.due_at <= now)
            .order_by(Timer.due_at, Timer.id)
            .limit(limit)
        )
        return [str(i) for i in (await self.session.execute(query)).scalars()]

    async def mark_failed(self, timer_id: str, *, now: datetime, reason: str) -> None:
        """Take a timer that cannot be fired out of the due set, naming why in ``fired_by``."""
        await self.session.execute(
            update(Timer)
            .where(Timer.id == timer_id, Timer.fired_at.is_(None))
            .values(fired_at=now, fired_by=f"failed:{reason}"[:64], late=False)
        )

    async def due_for_goal(self, goal_id: str, now: datetime) -> Sequence[Timer]:
        """This goal's unfired timers due by ``now`` (the caller holds the goal's lock)."""
        await self.flush()
        query = (
            select(Timer)
            .where(Timer.goal_id == goal_id, Timer.fired_at.is_(None), Timer.due_at <= now)
            .order_by(Timer.due_at, Timer.id)
            .with_for_update()
        )
        return (await self.session.execute(query)).scalars().all()

    async def unfired(
        self,
        *,
        goal_id: str | None = None,
        occurrence_id: str | None = None,
        session_id: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> Sequence[Timer]:
        await self.flush()
        query = select(Timer).where(Timer.fired_at.is_(None))
        query = self._scoped(query, goal_id, occurrence_id, session_id, kinds)
        return (await self.session.execute(query.order_by(Timer.due_at))).scalars().all()

    async def cancel(
        self,
        *,
        goal_id: str | None = None,
        occurrence_id: str | None = None,
        session_id: str | None = None,
        kinds: Iterable[str] | None = None,
    ) -> list[str]:
        """Delete matching unfired timers; returns their ids.

        A timer another scheduler replica has claimed (and will pass over,
        since this transaction holds its goal) is skipped rather than waited
        for: waiting could deadlock two replicas, and a stale timer fires as a
        no-op because firing re-checks the occurrence it is about.
        """
        await self.flush()
        query = select(Timer.id).where(Timer.fired_at.is_(None))
        query = self._scoped(query, goal_id, occurrence_id, session_id, kinds)
        ids = [
            str(i)
            for i in (await self.session.execute(query.with_for_update(skip_locked=True))).scalars()
        ]
        if ids:
            await self.session.execute(delete(Timer).where(Timer.id.in_(ids)))
        return ids

    @staticmethod
    def _scoped(
        statement: Any,
        goal_id: str | None,
        occurrence_id: str | None,
        session_id: str | None,
        kinds: Iterable[str] | None,
    ) -> Any:
        if goal_id is not None:
            statement = statement.where(Timer.goal_id == goal_id)
        if occurrence_id is not None:
            statement = statement.where(Timer.occurrence_id == occurrence_id)
        if session_id is not None:
            statement = statement.where(Timer.session_id == session_id)
        if kinds is not None:
            statement = statement.where(Timer.kind.in_(list(kinds)))
        return statement

    async def move(self, timer_id: str, due_at: datetime) -> int:
        await self.flush()
        result = await self.session.execute(
            update(Timer)
            .where(Timer.id == timer_id, Timer.fired_at.is_(None))
            .values(due_at=due_at)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_fired(
        self, timers: Sequence[Timer], *, now: datetime, by: str, late: bool
    ) -> None:
        """Mark these (claimed) timers fired in one statement; the loaded rows say so too."""
        if not timers:
            return
        await self.flush()
        await core.execute(
            self.session,
            MARK_UNFIRED_FIRED,
            {
                "ids": [timer.id for timer in timers],
                "fired_now": now,
                "fired_by_": by,
                "late_": late,
            },
        )
        for timer in timers:  # what the ORM's synchronize_session did, without evaluating SQL
            set_committed_value(timer, "fired_at", now)
            set_committed_value(timer, "fired_by", by)
            set_committed_value(timer, "late", late)

    async def next_due_at(self) -> datetime | None:
        result: datetime | None = await self.session.scalar(
            select(func.min(Timer.due_at)).where(Timer.fired_at.is_(None))
        )
        return result

    async def oldest_due_by_kind(self, now: datetime) -> dict[str, datetime]:
        rows = (
            await self.session.execute(
                select(Timer.kind, func.min(Timer.due_at))
                .where(Timer.fired_at.is_(None), Timer.due_at <= now)
                .group_by(Timer.kind)
            )
        ).all()
        return {str(kind): oldest for kind, oldest in rows}

    async def purge_fired(self, before: datetime) -> int:
        result = await self.session.execute(
            delete(Timer).where(Timer.fired_at.is_not(None), Timer.fired_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
