"""Turning goal state into catalog events, and recording them: outbox plus the goal's history.

Both writes happen in the caller's transaction, so an event exists in the
history exactly when it exists in the outbox, and neither exists for a change
that rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.goals.domain import Change, GoalState
from services.goals.models import GoalEventRecord, Milestone
from shared.db import core
from shared.events.catalog.goals import (
    GoalEventData,
    GoalSnapshot,
    GoalStatus,
    MilestoneEventData,
    MilestoneSnapshot,
    ProgressReportedData,
)
from shared.events.envelope import CloudEvent, EventData
from shared.events.registry import build_event
from shared.outbox.writer import Outbox

SOURCE = "/followthrough/goals"
_INSERT_HISTORY = insert(GoalEventRecord)


def milestone_snapshot(milestone: Milestone) -> MilestoneSnapshot:
    return MilestoneSnapshot(
        milestone_id=milestone.id,
        title=milestone.title,
        due_date=milestone.due_date,
        status=milestone.status,  # type: ignore[arg-type]
        completed_at=milestone.completed_at,
        evidence_note=milestone.evidence_note,
        external_ref=milestone.external_ref,
        overdue_at=milestone.overdue_at,
    )


def goal_snapshot(state: GoalState) -> GoalSnapshot:
    goal = state.goal
    return GoalSnapshot(
        goal_id=goal.id,
        external_ref=goal.external_ref,
        title=goal.title,
        description=goal.description,
        category=goal.category,
        target_date=goal.target_date,
        status=goal.status,  # type: ignore[arg-type]
        version=goal.version,
        participants=state.participants,
        policy=state.policy,
        milestones=[milestone_snapshot(m) for m in sorted(state.milestones, key=_position)],
        created_at=goal.created_at,
        updated_at=goal.updated_at,
        progress_percent=goal.progress_percent,
    )


def _position(milestone: Milestone) -> int:
    return milestone.position


def event_for(
    state: GoalState,
    change: Change,
    *,
    time: datetime | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> CloudEvent:
    """The event for ``change``, with the goal as it is now (call right after the change).

    Correlation and causation come from the context (the request, or the
    ingested event being applied) unless given.
    """
    snapshot = goal_snapshot(state)
    data: EventData
    subject = f"goals/{snapshot.goal_id}"
    if change.progress is not None:
        data = ProgressReportedData(
            goal=snapshot,
            percent=change.progress.percent,
            note=change.progress.note,
            reported_at=change.progress.reported_at,
            previous_percent=change.progress.previous_percent,
        )
    elif change.milestone is not None:
        data = MilestoneEventData(goal=snapshot, milestone=milestone_snapshot(change.milestone))
        subject = f"{subject}/milestones/{change.milestone.id}"
    else:
        previous: GoalStatus | None = change.previous_status  # type: ignore[assignment]
        data = GoalEventData(goal=snapshot, previous_status=previous, reason=change.reason)
    return build_event(
        change.event,
        data,
        tenant_id=state.goal.tenant_id,
        partition_key=snapshot.goal_id,
        source=SOURCE,
        subject=subject,
        time=time,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


class EventRecorder:
    """Writes emitted events to the outbox and to ``goal_events`` in the caller's transaction."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def record(self, session: AsyncSession, events: Sequence[CloudEvent]) -> None:
        if not events:
            return
        payloads = [event.to_json() for event in events]  # one serialisation for both tables
        await self._outbox.add(session, events, payloads)
        await core.execute(session, _INSERT_HISTORY, _history_rows(events, payloads))

    def record_on(self, connection: Connection, events: Sequence[CloudEvent]) -> None:
        """``record`` on a plain connection (``Database.run_core`` work); once the
        transaction committed, the caller wakes the relay with ``committed()``."""
        if not events:
            return
        payloads = [event.to_json() for event in events]
        self._outbox.insert_on(connection, events, payloads)
        connection.execute(_INSERT_HISTORY, _history_rows(events, payloads))

    def committed(self) -> None:
        """Events were committed: the relay publishes them now, not at its next poll."""
        self._outbox.committed.set()


def _history_rows(events: Sequence[CloudEvent], payloads: Sequence[bytes]) -> list[dict[str, Any]]:
    """The ``goal_events`` rows of ``events``, with the payloads their outbox rows carry."""
    return [
        {
            "tenant_id": event.tenantid,
            "goal_id": event.partitionkey,
            "event_id": event.id,
            "event_type": event.type,
            "time": event.time,
            "payload": payload,
        }
        for event, payload in zip(events, payloads, strict=True)
    ]
