"""What the sessions service consumes: goal and milestone events, into its projection and plans.

Each event carries the whole goal snapshot with its version. The newer
version wins and an older or equal one changes nothing, so redelivery and
reordering are harmless; the schedule is then reconciled with the winning
snapshot (state-based, so applying it twice plans nothing twice). A batch is
one transaction: its dedupe marks, projection rows and plans commit together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from services.sessions.models import GoalProjection
from services.sessions.repository import SessionsRepository
from services.sessions.timers.planner import GoalContext, Planner, Rules
from services.sessions.timers.repository import TimerRepository
from shared.clock import Clock
from shared.db.database import Database
from shared.events.catalog.goals import (
    GoalEventData,
    GoalSnapshot,
    MilestoneEventData,
    ProgressReportedData,
)
from shared.events.catalog.policy import CheckinPolicy
from shared.events.envelope import CloudEvent
from shared.kafka.consumed import ConsumedEvent, event_scope
from shared.kafka.dedupe import first_deliveries
from shared.logs import get_logger
from shared.outbox.writer import Outbox

log = get_logger(__name__)
CONSUMER = "sessions.goal-events"
_GOAL_DATA = (GoalEventData, MilestoneEventData, ProgressReportedData)


def stored_policy(snapshot: dict[str, Any]) -> CheckinPolicy | None:
    """The policy of a stored snapshot, or None when it no longer validates (see GoalContext)."""
    raw = snapshot.get("policy")
    if raw is None:
        return None
    try:
        return CheckinPolicy.model_validate(raw)
    except ValidationError:
        return None


class GoalEventHandler:
    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        clock: Clock,
        rules: Rules,
        on_timers_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = database
        self._outbox = outbox
        self._clock = clock
        self._rules = rules
        self._on_timers_changed = on_timers_changed

    async def __call__(self, batch: Sequence[ConsumedEvent]) -> None:
        events = [item.event for item in batch if isinstance(item.event.data, _GOAL_DATA)]
        now = self._clock.now()
        async with self._db.transaction() as session:
            repo = SessionsRepository(session)
            planner = Planner(repo, TimerRepository(session), self._rules, now)
            first_seen = await first_deliveries(
                session, CONSUMER, [item.event.id for item in batch]
            )
            rows = await repo.goals_for_update(_goal_id(event) for event in events)
            known = set(rows)
            applied: set[str] = set()
            for event in events:
                with event_scope(event):
                    # Seen in an earlier batch, or twice in this one (a relay that published
                    # again after a crash can put both copies in one batch).
                    if event.id not in first_seen or event.id in applied:
                        log.info("sessions.event.duplicate", event_type=event.type)
                        continue
                    applied.add(event.id)
                    await self._apply(event, rows, planner)
            await repo.insert_new([row for goal_id, row in rows.items() if goal_id not in known])
            await planner.flush()
            await self._outbox.add(session, planner.events)
        if planner.timers_changed:
            self._on_timers_changed()

    async def _apply(
        self,
        event: CloudEvent,
        rows: dict[str, GoalProjection],
        planner: Planner,
    ) -> None:
        data = event.data
        assert isinstance(data, _GOAL_DATA)
        snapshot: GoalSnapshot = data.goal
        row = rows.get(snapshot.goal_id)
        previous_policy: CheckinPolicy | None = None
        fresh = row is None
        if row is None:
            row = GoalProjection(
                goal_id=snapshot.goal_id,
                tenant_id=event.tenantid,
                version=snapshot.version,
                status=snapshot.status,
                snapshot=snapshot.model_dump(mode="json"),
                updated_at=planner.now,
                schedule_state="none",
                next_sequence=1,
                current_streak=0,
                longest_streak=0,
                consecutive_misses=0,
                ratings=[],
            )
            rows[snapshot.goal_id] = row  # inserted with the batch's other new rows
        elif row.tenant_id != event.tenantid:
            log.warning(
                "sessions.goal_event.foreign_tenant",
                goal_id=snapshot.goal_id,
                owner_tenant=row.tenant_id,
            )
            return
        elif snapshot.version <= row.version:
            log.info(
                "sessions.goal_event.stale",
                event_type=event.type,
                goal_id=snapshot.goal_id,
                goal_version=snapshot.version,
                projected_version=row.version,
            )
            return
        else:
            previous_policy = stored_policy(row.snapshot)
            row.version = snapshot.version
            row.status = snapshot.status
            row.snapshot = snapshot.model_dump(mode="json")
            row.updated_at = planner.now
        await planner.reconcile(GoalContext(row, snapshot), previous_policy, fresh=fresh)
        log.info(
            "sessions.goal_event.received",
            event_type=event.type,
            goal_id=snapshot.goal_id,
            goal_version=snapshot.version,
            schedule_state=row.schedule_state,
        )


def _goal_id(event: CloudEvent) -> str:
    data = event.data
    assert isinstance(data, _GOAL_DATA)
    return data.goal.goal_id
