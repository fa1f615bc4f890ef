"""Goals use cases: one transaction per request, its events through the outbox.

A write loads the goal and locks its row first, so two changes to one goal
are serialised and their events leave in the order they happened; the events
and the goal's history are written in the same transaction as the change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from services.goals import domain, milestones
from services.goals.cursors import decode, encode, invalid_cursor
from services.goals.domain import GoalState
from services.goals.events import EventRecorder, goal_snapshot
from services.goals.repository import GoalRepository, insert_created
from services.goals.responses import GoalFilters
from services.goals.schemas import (
    GoalCreate,
    GoalPatch,
    GoalUpsert,
    MilestoneCreate,
    MilestonePatch,
)
from services.goals.work import Work, apply_upsert, check_if_match, not_found
from shared.clock import Clock
from shared.db.database import Database
from shared.events.catalog.goals import GoalSnapshot
from shared.http.problems import ProblemError
from shared.logs import get_logger
from shared.outbox.writer import Outbox

log = get_logger(__name__)

_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def _has_due_milestone(state: GoalState, now: datetime) -> bool:
    return state.goal.status == "active" and any(
        m.status == "pending"
        and m.overdue_fired_at is None
        and m.overdue_at is not None
        and m.overdue_at <= now
        for m in state.milestones
    )


class GoalsService:
    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        clock: Clock,
        *,
        wake_timer: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = database
        self._recorder = EventRecorder(outbox)
        self._clock = clock
        self.wake_timer = wake_timer

    @asynccontextmanager
    async def work(self) -> AsyncIterator[Work]:
        """A write transaction whose touched states and events are saved when the block ends."""
        async with self._db.transaction() as session:
            work = Work(GoalRepository(session), self._clock.now())
            yield work
            await work.repository.save(work.states)
            await self._recorder.record(session, work.events)
        self._committed(work)

    async def create(self, make: Callable[[Work], GoalState]) -> tuple[Work, GoalState]:
        """A transaction that only creates: ``make`` builds the goal, nothing is read.

        The whole transaction is one synchronous function of Core INSERTs run
        with ``Database.run_core`` (SQLAlchemy's greenlet entered once, not at
        every step of a session), the cost ``POST /v1/goals`` pays per goal.
        ``now`` is read inside it, as in ``work()``, so on SQLite the goals of
        one process are stamped in the order they commit.
        """
        work, state = await self._db.run_core(
            functools.partial(self._write_created, make), write=True
        )
        self._recorder.committed()  # work() has its session's commit callback do this
        self._committed(work)
        return work, state

    def _write_created(
        self, make: Callable[[Work], GoalState], connection: Connection
    ) -> tuple[Work, GoalState]:
        work = Work(None, self._clock.now())
        state = make(work)
        insert_created(connection, work.states)
        self._recorder.record_on(connection, work.events)
        return work, state

    def _committed(self, work: Work) -> None:
        """After the commit: the events' log lines, and the timer woken if one is overdue."""
        for event in work.events:
            log.info(
                "goals.event.emitted",
                event_type=event.type,
                event_id=event.id,
                goal_id=event.partitionkey,
                correlation_id=event.correlationid,  # an ingested item may have its own
                causation_id=event.causationid,
            )
        if any(_has_due_milestone(state, work.now) for state in work.states):
            self.wake_timer()  # something is overdue already: no need to wait for the poll

    # -- reads ------------------------------------------------------------------

    async def get_goal(self, tenant_id: str, goal_id: str) -> GoalSnapshot:
        async with self._db.reader() as session:
            state = await GoalRepository(session).load(tenant_id, goal_id)
        if state is None:
            raise not_found(goal_id)
        return goal_snapshot(state)

    async def get_goal_by_ref(self, tenant_id: str, external_ref: str) -> GoalSnapshot:
        async with self._db.reader() as session:
            state = await GoalRepository(session).load_by_ref(tenant_id, external_ref)
        if state is None:
            raise ProblemError(404, f"no goal has external_ref {external_ref}", slug="not-found")
        return goal_snapshot(state)

    async def list_goals(
        self, tenant_id: str, filters: GoalFilters, *, cursor: str | None, limit: int
    ) -> tuple[list[GoalSnapshot], str | None]:
        scope = filters.model_dump_json()
        after = None
        if cursor:
            position = decode(cursor, scope=scope)
            try:
                after = (datetime.fromisoformat(position["u"]), str(position["i"]))
            except (KeyError, TypeError, ValueError):
                raise invalid_cursor("cursor is not valid") from None
            if after[0].tzinfo is None or not _ID.match(after[1]):
                raise invalid_cursor("cursor is not valid")
        async with self._db.reader() as session:
            states = await GoalRepository(session).page(
                tenant_id, filters, after=after, limit=limit
            )
        more = len(states) > limit
        states = states[:limit]
        next_cursor = None
        if more:
            last = states[-1].goal
            next_cursor = encode({"u": last.updated_at.isoformat(), "i": last.id}, scope=scope)
        return [goal_snapshot(s) for s in states], next_cursor

    async def goal_events(
        self, tenant_id: str, goal_id: str, *, cursor: str | None, limit: int
    ) -> tuple[list[bytes], str | None]:
        after = 0
        if cursor:
            position = decode(cursor, scope=goal_id)
            if not isinstance(position.get("q"), int) or not 0 <= position["q"] < 2**63:
                raise invalid_cursor("cursor is not valid")
            after = position["q"]
        async with self._db.reader() as session:
            repository = GoalRepository(session)
            if not await repository.exists(tenant_id, goal_id):
                raise not_found(goal_id)
            rows = await repository.events_page(tenant_id, goal_id, after_seq=after, limit=limit)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode({"q": rows[-1][0]}, scope=goal_id) if more else None
        return [payload for _, payload in rows], next_cursor

    # -- goal writes ------------------------------------------------------------

    async def create_goal(self, tenant_id: str, payload: GoalCreate) -> GoalSnapshot:
        def make(work: Work) -> GoalState:
            return domain.new_goal(
                tenant_id=tenant_id,
                fields=payload.model_dump(include=_GOAL_FIELDS),
                participants=[p.to_event() for p in payload.participants],
                policy=payload.policy.to_event() if payload.policy else None,
                milestones=[m.model_dump() for m in payload.milestones],
                status=payload.status,
                now=work.now,
                emit=work.emit,
            )

        try:
            work, state = await self.create(make)
        except IntegrityError:
            raise _ref_taken(payload.external_ref) from None
        return work.snapshot(state)

    async def patch_goal(
        self, tenant_id: str, goal_id: str, payload: GoalPatch, *, if_match: str | None
    ) -> GoalSnapshot:
        changes: dict[str, Any] = payload.model_dump(include=payload.model_fields_set)
        if "participants" in changes and payload.participants is not None:
            changes["participants"] = [p.to_event() for p in payload.participants]
        if "policy" in changes:
            changes["policy"] = payload.policy.to_event() if payload.policy else None
        try:
            async with self.work() as work:
                state = await self._locked(work, tenant_id, goal_id, if_match)
                domain.update_goal(state, changes, now=work.now, emit=work.emit)
        except IntegrityError:
            raise _ref_taken(payload.external_ref) from None
        return work.snapshot(state)

    async def upsert_by_ref(
        self, tenant_id: str, external_ref: str, payload: GoalUpsert, *, if_match: str | None
    ) -> tuple[GoalSnapshot, bool]:
        """Create or replace the goal the integrator knows as ``external_ref``; True if created."""
        for attempt in (1, 2):
            try:
                async with self.work() as work:
                    known = await work.repository.load_by_ref(
                        tenant_id, external_ref, for_update=True
                    )
                    state, created = apply_upsert(
                        work, tenant_id, external_ref, payload, known, if_match=if_match
                    )
                return work.snapshot(state), created
            except IntegrityError:  # a concurrent PUT created it first: now it is an update
                if attempt == 2:
                    raise _ref_taken(external_ref) from None
        raise AssertionError("unreachable")

    async def act(
        self,
        tenant_id: str,
        goal_id: str,
        action: str,
        *,
        reason: str | None,
        if_match: str | None,
    ) -> GoalSnapshot:
        async with self.work() as work:
            state = await self._locked(work, tenant_id, goal_id, if_match)
            domain.transition(state, action, reason=reason, now=work.now, emit=work.emit)
        return work.snapshot(state)

    # -- milestones and progress -----------------------------------------------

    async def add_milestone(
        self, tenant_id: str, goal_id: str, payload: MilestoneCreate, *, if_match: str | None
    ) -> tuple[GoalSnapshot, str]:
        async with self.work() as work:
            state = await self._locked(work, tenant_id, goal_id, if_match)
            milestone = milestones.add_milestone(
                state, payload.model_dump(), now=work.now, emit=work.emit
            )
        return work.snapshot(state), milestone.id

    async def patch_milestone(
        self,
        tenant_id: str,
        goal_id: str,
        milestone_id: str,
        payload: MilestonePatch,
        *,
        if_match: str | None,
    ) -> GoalSnapshot:
        changes = payload.model_dump(include=payload.model_fields_set)
        async with self.work() as work:
            state = await self._locked(work, tenant_id, goal_id, if_match)
            milestone = _milestone(state, milestone_id)
            milestones.update_milestone(state, milestone, changes, now=work.now, emit=work.emit)
        return work.snapshot(state)

    async def finish_milestone(
        self,
        tenant_id: str,
        goal_id: str,
        milestone_id: str,
        outcome: str,
        *,
        note: str | None,
        if_match: str | None,
    ) -> GoalSnapshot:
        async with self.work() as work:
            state = await self._locked(work, tenant_id, goal_id, if_match)
            milestone = _milestone(state, milestone_id)
            milestones.finish_milestone(
                state, milestone, outcome, note=note, now=work.now, emit=work.emit
            )
        return work.snapshot(state)

    async def report_progress(
        self,
        tenant_id: str,
        goal_id: str,
        percent: int,
        *,
        note: str | None,
        if_match: str | None,
    ) -> GoalSnapshot:
        async with self.work() as work:
            state = await self._locked(work, tenant_id, goal_id, if_match)
            milestones.report_progress(state, percent, note=note, now=work.now, emit=work.emit)
        return work.snapshot(state)

    async def _locked(
        self, work: Work, tenant_id: str, goal_id: str, if_match: str | None
    ) -> GoalState:
        state = await work.repository.load(tenant_id, goal_id, for_update=True)
        if state is None:
            raise not_found(goal_id)
        check_if_match(state, if_match)
        return state


_GOAL_FIELDS = {"external_ref", "title", "description", "category", "target_date"}


def _ref_taken(external_ref: str | None) -> ProblemError:
    return ProblemError(
        409,
        f"external_ref {external_ref} is already used by another goal",
        slug="conflict",
    )


def _milestone(state: GoalState, milestone_id: str) -> Any:
    milestone = state.milestone(milestone_id)
    if milestone is None:
        raise ProblemError(404, f"milestone {milestone_id} not found", slug="not-found")
    return milestone
