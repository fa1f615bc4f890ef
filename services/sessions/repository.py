"""Every query of the sessions database except the timers' (see timer_repository).

A goal's projection row is the lock of its timeline: whoever changes a goal's
occurrences or timers locks that row first (the scheduler with SKIP LOCKED,
so it passes over a goal someone else is changing instead of waiting).

Planned occurrences are buffered like planned timers: a scheduler pass or an
intake batch plans hundreds, and an ORM object each (constructed, added,
flushed by the unit of work, detached) cost more than the INSERT that writes
them all. Every read or change of occurrences writes the buffer first, so
nothing in the transaction can miss a planned occurrence, and the owner of
the transaction calls :meth:`SessionsRepository.write_planned` (through
``Planner.flush``) before it commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, and_, bindparam, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.models import (
    CalendarFeed,
    Checkin,
    CoachingSessionRow,
    GoalProjection,
    Occurrence,
)
from shared.db import core

_OCCURRENCES: Table = Occurrence.__table__  # type: ignore[assignment]
INSERT_OCCURRENCES = insert(_OCCURRENCES)


@dataclass(frozen=True, slots=True)
class NewOccurrence:
    """An occurrence planned in this transaction, every column of its row."""

    id: str
    tenant_id: str
    goal_id: str
    sequence: int
    due_at: datetime
    nominal_local: str
    local_due: str
    timezone: str
    opens_at: datetime
    deadline_at: datetime
    grace_minutes: int
    rule: str
    dst_decision: str | None
    created_at: datetime
    status: str = "open"
    snoozed_minutes: int = 0
    misses_in_row: int = 0
    checkin_id: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _NEW_OCCURRENCE_FIELDS}


_NEW_OCCURRENCE_FIELDS = tuple(field.name for field in fields(NewOccurrence))


def _goals_for_update(skip_locked: bool) -> Select[GoalProjection]:
    """Goals by id, locked in id order; built once (intake runs it for every batch)."""
    return (
        select(GoalProjection)
        .where(GoalProjection.goal_id.in_(bindparam("ids", expanding=True)))
        .order_by(GoalProjection.goal_id)
        .with_for_update(skip_locked=skip_locked)
    )


_GOALS_FOR_UPDATE = {skip: _goals_for_update(skip) for skip in (False, True)}


class SessionsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._planned: list[NewOccurrence] = []

    def add(self, row: object) -> None:
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()

    async def insert_new(self, rows: Sequence[object]) -> None:
        """New rows in one Core INSERT per table (see :func:`shared.db.core.insert_new`)."""
        await core.insert_new(self.session, rows)

    async def write_and_detach(self, rows: Sequence[object]) -> None:
        """Write the changes of ``rows`` and every new row in Core statements, then detach them.

        For a session that ends with its transaction: see
        :func:`shared.db.core.write_and_detach`.
        """
        await core.write_and_detach(self.session, [*self.session.new, *rows])

    # Goals -----------------------------------------------------------------

    async def goal(
        self, tenant_id: str, goal_id: str, *, for_update: bool = False
    ) -> GoalProjection | None:
        query = select(GoalProjection).where(
            GoalProjection.tenant_id == tenant_id, GoalProjection.goal_id == goal_id
        )
        if for_update:
            query = query.with_for_update()
        result: GoalProjection | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def goals_for_update(
        self, goal_ids: Iterable[str], *, skip_locked: bool = False
    ) -> dict[str, GoalProjection]:
        """Lock these goals' rows (in id order, so two lockers never deadlock)."""
        ids = sorted(set(goal_ids))
        if not ids:
            return {}
        query = _GOALS_FOR_UPDATE[skip_locked]
        rows = (await self.session.execute(query, {"ids": ids})).scalars().all()
        return {row.goal_id: row for row in rows}

    async def tenant_goals(
        self, tenant_id: str, *, status: str | None = None
    ) -> Sequence[GoalProjection]:
        """Every goal of a tenant (of one goal status, if given), for ranking by risk."""
        query = select(GoalProjection).where(GoalProjection.tenant_id == tenant_id)
        if status is not None:
            query = query.where(GoalProjection.status == status)
        return (await self.session.execute(query)).scalars().all()

    async def existing_goal_ids(self, goal_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(goal_ids))
        if not ids:
            return set()
        found = await self.session.execute(
            select(GoalProjection.goal_id).where(GoalProjection.goal_id.in_(ids))
        )
        return {str(goal_id) for goal_id in found.scalars()}

    # Occurrences -------------------------------------------------------------

    def plan_occurrence(self, occurrence: NewOccurrence) -> None:
        """Buffer a new occurrence: written with the others by :meth:`write_planned`."""
        self._planned.append(occurrence)

    async def write_planned(self) -> None:
        """The buffered occurrences in one INSERT (before anything reads occurrences)."""
        if not self._planned:
            return
        rows = [occurrence.row() for occurrence in self._planned]
        self._planned.clear()
        await core.execute(self.session, INSERT_OCCURRENCES, rows)

    async def open_occurrence(self, goal_id: str) -> Occurrence | None:
        await self.write_planned()
        result: Occurrence | None = (
            await self.session.execute(
                select(Occurrence).where(Occurrence.goal_id == goal_id, Occurrence.status == "open")
            )
        ).scalar_one_or_none()
        return result

    async def occurrence(self, goal_id: str, occurrence_id: str) -> Occurrence | None:
        await self.write_planned()
        result: Occurrence | None = (
            await self.session.execute(
                select(Occurrence).where(
                    Occurrence.goal_id == goal_id, Occurrence.id == occurrence_id
                )
            )
        ).scalar_one_or_none()
        return result

    async def occurrences_by_id(self, ids: Iterable[str]) -> dict[str, Occurrence]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        await self.write_planned()
        rows = (
            (await self.session.execute(select(Occurrence).where(Occurrence.id.in_(wanted))))
            .scalars()
            .all()
        )
        return {row.id: row for row in rows}

    async def latest_occurrence(self, goal_id: str) -> Occurrence | None:
        await self.write_planned()
        result: Occurrence | None = (
            await self.session.execute(
                select(Occurrence)
                .where(Occurrence.goal_id == goal_id)
                .order_by(Occurrence.due_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return result

    async def latest_resolved_opened_by(self, goal_id: str, moment: datetime) -> Occurrence | None:
        """The newest resolved occurrence whose check-in window had opened by ``moment``."""
        await self.write_planned()
        result: Occurrence | None = (
            await self.session.execute(
                select(Occurrence)
                .where(
                    Occurrence.goal_id == goal_id,
                    Occurrence.status != "open",
                    Occurrence.opens_at <= moment,
                )
                .order_by(Occurrence.due_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return result

    async def latest_missed(self, goal_id: str) -> Occurrence | None:
        await self.write_planned()
        result: Occurrence | None = (
            await self.session.execute(
                select(Occurrence)
                .where(Occurrence.goal_id == goal_id, Occurrence.status == "missed")
                .order_by(Occurrence.due_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return result

    async def delete_occurrence(self, occurrence: Occurrence) -> None:
        await self.write_planned()
        await self.session.delete(occurrence)
        await self.session.flush()

    async def adherence_counts(self, goal_id: str, since: datetime) -> tuple[int, int, int]:
        """(completed on time, missed, missed since ``since``) over resolved occurrences."""
        await self.write_planned()
        completed = func.sum(case((Occurrence.status == "completed", 1), else_=0))
        missed = func.sum(case((Occurrence.status == "missed", 1), else_=0))
        recent = func.sum(
            case((and_(Occurrence.status == "missed", Occurrence.due_at >= since), 1), else_=0)
        )
        row = (
            await self.session.execute(
                select(completed, missed, recent).where(
                    Occurrence.goal_id == goal_id, Occurrence.status != "open"
                )
            )
        ).one()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    # Check-ins -------------------------------------------------------------

    async def checkins(
        self, goal_id: str, *, limit: int, before: datetime | None = None
    ) -> Sequence[Checkin]:
        query = select(Checkin).where(Checkin.goal_id == goal_id)
        if before is not None:
            query = query.where(Checkin.occurred_at < before)
        query = query.order_by(Checkin.occurred_at.desc(), Checkin.id.desc()).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def late_checkins(self, goal_id: str) -> int:
        count = await self.session.scalar(
            select(func.count()).where(Checkin.goal_id == goal_id, Checkin.status == "late")
        )
        return int(count or 0)

    # Coaching sessions -----------------------------------------------------

    async def coaching_session(
        self, tenant_id: str, session_id: str, *, for_update: bool = False
    ) -> CoachingSessionRow | None:
        query = select(CoachingSessionRow).where(
            CoachingSessionRow.tenant_id == tenant_id, CoachingSessionRow.id == session_id
        )
        if for_update:
            query = query.with_for_update()
        result: CoachingSessionRow | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def coaching_sessions_by_id(self, ids: Iterable[str]) -> dict[str, CoachingSessionRow]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = (
            (
                await self.session.execute(
                    select(CoachingSessionRow).where(CoachingSessionRow.id.in_(wanted))
                )
            )
            .scalars()
            .all()
        )
        return {row.id: row for row in rows}

    async def upcoming_sessions(
        self, goal_id: str, start: datetime, end: datetime
    ) -> Sequence[CoachingSessionRow]:
        return (
            (
                await self.session.execute(
                    select(CoachingSessionRow)
                    .where(
                        CoachingSessionRow.goal_id == goal_id,
                        CoachingSessionRow.status == "scheduled",
                        CoachingSessionRow.starts_at > start,
                        CoachingSessionRow.starts_at <= end,
                    )
                    .order_by(CoachingSessionRow.starts_at)
                    .limit(200)
                )
            )
            .scalars()
            .all()
        )

    # Calendars ---------------------------------------------------------------

    async def occurrences_since(
        self, goal_id: str, since: datetime, limit: int
    ) -> list[Occurrence]:
        """A goal's newest ``limit`` occurrences due from ``since`` on (history, the open one),
        oldest first."""
        await self.write_planned()
        rows = await self.session.execute(
            select(Occurrence)
            .where(Occurrence.goal_id == goal_id, Occurrence.due_at >= since)
            .order_by(Occurrence.due_at.desc())
            .limit(limit)
        )
        return list(reversed(rows.scalars().all()))

    async def sessions_since(
        self, goal_id: str, since: datetime, limit: int
    ) -> list[CoachingSessionRow]:
        """A goal's coaching sessions starting from ``since`` on, in any state, soonest first."""
        rows = await self.session.execute(
            select(CoachingSessionRow)
            .where(CoachingSessionRow.goal_id == goal_id, CoachingSessionRow.starts_at >= since)
            .order_by(CoachingSessionRow.starts_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def calendar_feed(self, feed_id: str, *, for_update: bool = False) -> CalendarFeed | None:
        query = select(CalendarFeed).where(CalendarFeed.id == feed_id)
        if for_update:
            query = query.with_for_update()
        found: CalendarFeed | None = (await self.session.execute(query)).scalar_one_or_none()
        return found

    async def calendar_feeds(self, tenant_id: str, goal_ids: Iterable[str]) -> list[CalendarFeed]:
        """The feeds of these goals ('' is the person feeds) of one tenant."""
        rows = await self.session.execute(
            select(CalendarFeed).where(
                CalendarFeed.tenant_id == tenant_id, CalendarFeed.goal_id.in_(list(goal_ids))
            )
        )
        return list(rows.scalars())
