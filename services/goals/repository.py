"""Every query of the goals database; the service layer never builds SQL itself.

Every query that a request can reach filters on the tenant, so another
tenant's id simply finds nothing. Loading and saving work on whole
``GoalState`` aggregates, in as few round trips as the work allows: one for
the goals, one for all their milestones, one flush for everything changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.goals.domain import GoalState
from services.goals.models import (
    Goal,
    GoalEventRecord,
    GoalParticipant,
    IngestedEvent,
    Milestone,
)
from services.goals.responses import GoalFilters
from shared.db import core

_INSERT_PARTICIPANTS = insert(GoalParticipant)


def insert_created(connection: Connection, states: Sequence[GoalState]) -> None:
    """New goals with their participants and milestones, on a plain connection.

    ``GoalRepository.save`` for a transaction that only creates (``POST
    /v1/goals``), run as one synchronous function with ``Database.run_core``:
    the same multi-row INSERTs, without a session to attach the rows to.
    """
    assert all(state.is_new for state in states), "insert_created writes new goals only"
    core.insert_rows_of(connection, [state.goal for state in states])
    added, participants = _written_with(states)
    if participants:
        connection.execute(_INSERT_PARTICIPANTS, participants)
    core.insert_rows_of(connection, added)


def _written_with(states: Sequence[GoalState]) -> tuple[list[Any], list[dict[str, Any]]]:
    """The rows a save writes beside the goals: objects added, and replaced participant lists.

    Marks the states saved (nothing added, participants and goal as written).
    """
    added: list[Any] = []
    participants: list[dict[str, Any]] = []
    for state in states:
        added.extend(state.added)
        state.added.clear()
        if state.participants_changed:
            participants.extend(
                {
                    "goal_id": state.goal.id,
                    "position": index,
                    "tenant_id": state.goal.tenant_id,
                    "role": person.role,
                    "email": person.email.lower(),
                }
                for index, person in enumerate(state.participants)
            )
            state.participants_changed = False
        state.is_new = False
    return added, participants


class GoalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- loading aggregates -------------------------------------------------

    async def load(
        self, tenant_id: str, goal_id: str, *, for_update: bool = False
    ) -> GoalState | None:
        states = await self.load_many(tenant_id, ids=[goal_id], for_update=for_update)
        return states[0] if states else None

    async def load_by_ref(
        self, tenant_id: str, external_ref: str, *, for_update: bool = False
    ) -> GoalState | None:
        states = await self.load_many(tenant_id, refs=[external_ref], for_update=for_update)
        return states[0] if states else None

    async def load_many(
        self,
        tenant_id: str,
        *,
        ids: Iterable[str] = (),
        refs: Iterable[str] = (),
        for_update: bool = False,
    ) -> list[GoalState]:
        """Goals of ``tenant_id`` by id or external ref, locked when ``for_update``.

        Rows are locked in id order so two writers locking overlapping sets
        cannot deadlock.
        """
        ids, refs = sorted(set(ids)), sorted(set(refs))
        if not ids and not refs:
            return []
        keys = []
        if ids:
            keys.append(Goal.id.in_(ids))
        if refs:
            keys.append(Goal.external_ref.in_(refs))
        query = select(Goal).where(Goal.tenant_id == tenant_id, or_(*keys)).order_by(Goal.id)
        if for_update:
            query = query.with_for_update()
        goals = list((await self._session.execute(query)).scalars())
        return await self._with_milestones(goals)

    async def _with_milestones(self, goals: Sequence[Goal]) -> list[GoalState]:
        if not goals:
            return []
        by_goal: dict[str, list[Milestone]] = defaultdict(list)
        rows = await self._session.execute(
            select(Milestone)
            .where(Milestone.goal_id.in_([g.id for g in goals]))
            .order_by(Milestone.goal_id, Milestone.position)
        )
        for milestone in rows.scalars():
            by_goal[milestone.goal_id].append(milestone)
        return [GoalState.of(goal, by_goal[goal.id]) for goal in goals]

    async def exists(self, tenant_id: str, goal_id: str) -> bool:
        found = await self._session.scalar(
            select(Goal.id).where(Goal.tenant_id == tenant_id, Goal.id == goal_id)
        )
        return found is not None

    # -- saving aggregates --------------------------------------------------

    async def save(self, states: Sequence[GoalState]) -> None:
        """Write what changed: new goals first (their rows are referenced), then the rest.

        New rows (goals, participants, milestones, progress reports) go in as
        one multi-row Core INSERT per table and are then attached to the
        session as persistent, so a later change to them in this transaction
        is still flushed as an UPDATE; changes to loaded goals are the ORM's
        (it tracks which columns changed).
        """
        await core.insert_new(self._session, [s.goal for s in states if s.is_new])
        replaced = [s.goal.id for s in states if s.participants_changed and not s.is_new]
        if replaced:
            await core.execute(
                self._session,
                delete(GoalParticipant).where(GoalParticipant.goal_id.in_(replaced)),
            )
        added, participants = _written_with(states)
        if participants:
            await core.execute(self._session, _INSERT_PARTICIPANTS, participants)
        await core.insert_new(self._session, added)

    # -- listing --------------------------------------------------------------

    async def page(
        self,
        tenant_id: str,
        filters: GoalFilters,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[GoalState]:
        """Goals ordered by (updated_at, id), after the cursor position; ``limit`` + 1 rows."""
        query = select(Goal).where(Goal.tenant_id == tenant_id)
        if filters.status is not None:
            query = query.where(Goal.status == filters.status)
        if filters.updated_since is not None:
            query = query.where(Goal.updated_at >= filters.updated_since)
        for email, role in (
            (filters.mentee_email, "mentee"),
            (filters.participant_email, None),
        ):
            if email is None:
                continue
            person = select(GoalParticipant.goal_id).where(
                GoalParticipant.goal_id == Goal.id,
                GoalParticipant.tenant_id == tenant_id,
                GoalParticipant.email == email.lower(),
            )
            if role is not None:
                person = person.where(GoalParticipant.role == role)
            query = query.where(exists(person))
        if after is not None:
            updated_at, goal_id = after
            query = query.where(
                or_(
                    Goal.updated_at > updated_at,
                    and_(Goal.updated_at == updated_at, Goal.id > goal_id),
                )
            )
        query = query.order_by(Goal.updated_at, Goal.id).limit(limit + 1)
        goals = list((await self._session.execute(query)).scalars())
        return await self._with_milestones(goals)

    async def events_page(
        self, tenant_id: str, goal_id: str, *, after_seq: int, limit: int
    ) -> list[tuple[int, bytes]]:
        rows = await self._session.execute(
            select(GoalEventRecord.seq, GoalEventRecord.payload)
            .where(
                GoalEventRecord.tenant_id == tenant_id,
                GoalEventRecord.goal_id == goal_id,
                GoalEventRecord.seq > after_seq,
            )
            .order_by(GoalEventRecord.seq)
            .limit(limit + 1)
        )
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    # -- ingestion dedupe -----------------------------------------------------

    async def ingested(
        self, tenant_id: str, keys: Iterable[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which (source, id) pairs of ``keys`` were accepted before."""
        keys = set(keys)
        if not keys:
            return set()
        rows = await self._session.execute(
            select(IngestedEvent.source, IngestedEvent.event_id).where(
                IngestedEvent.tenant_id == tenant_id,
                IngestedEvent.event_id.in_(sorted({event_id for _, event_id in keys})),
            )
        )
        return {(source, event_id) for source, event_id in rows} & keys

    async def remember_ingested(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self._session.execute(insert(IngestedEvent), list(rows))

    # -- the overdue timer ----------------------------------------------------

    def _overdue(self, now: datetime) -> Any:
        return and_(
            Milestone.status == "pending",
            Milestone.overdue_fired_at.is_(None),
            Milestone.overdue_at <= now,
        )

    async def lock_goals_with_overdue(self, now: datetime, *, limit: int) -> list[GoalState]:
        """Active goals with a milestone overdue and not yet told, locked, skipping locked ones.

        Another replica (or a request) holding a goal's lock makes this one
        skip that goal; the conditional claim in :meth:`claim_overdue` makes
        sure a milestone fires once even so.
        """
        due_goals = select(Milestone.goal_id).where(self._overdue(now))
        query = (
            select(Goal)
            .where(Goal.status == "active", Goal.id.in_(due_goals))
            .order_by(Goal.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=Goal)
        )
        goals = list((await self._session.execute(query)).scalars())
        return await self._with_milestones(goals)

    async def claim_overdue(self, milestone: Milestone, now: datetime) -> bool:
        """Mark one milestone as told, if nobody did yet: a conditional UPDATE, so two
        replicas can never both win it, whatever their locks saw."""
        result = await self._session.execute(
            update(Milestone)
            .where(Milestone.id == milestone.id, self._overdue(now))
            .values(overdue_fired_at=now)
            .execution_options(synchronize_session=False)
        )
        claimed = bool(getattr(result, "rowcount", 0))
        if claimed:
            set_committed_value(milestone, "overdue_fired_at", now)
        return claimed

    async def oldest_overdue(self, now: datetime) -> datetime | None:
        oldest: datetime | None = await self._session.scalar(
            select(func.min(Milestone.overdue_at))
            .join(Goal, Goal.id == Milestone.goal_id)
            .where(Goal.status == "active", self._overdue(now))
        )
        return oldest
