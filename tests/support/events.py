"""Real catalog events for tests of the platform, built the way services build them."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import build_event
from shared.events.catalog.common import Participant
from shared.events.catalog.goals import (
    GoalSnapshot,
    MilestoneCompleted,
    MilestoneEventData,
    MilestoneSnapshot,
)
from shared.events.catalog.notifications import EndpointDisabled, EndpointDisabledData

MOMENT = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def endpoint_disabled(
    number: int, *, tenant_id: str = "acme", partition_key: str = "goal-1"
) -> EndpointDisabled:
    """A small event whose id says its place in a sequence (``evt-0007``); same bytes every time."""
    return build_event(
        EndpointDisabled,
        EndpointDisabledData(
            endpoint_id=f"ep-{number}", url="https://example.com/hook", reason="failing"
        ),
        tenant_id=tenant_id,
        partition_key=partition_key,
        source="/followthrough/tests",
        event_id=f"evt-{number:04d}",
        time=MOMENT,
        correlation_id=f"corr-{number}",
    )


def milestone_completed(goal_id: str = "goal-42") -> MilestoneCompleted:
    """A realistic domain event: nested snapshot, dates, e-mail addresses, a time zone."""
    milestone = MilestoneSnapshot(
        milestone_id="ms-1",
        title="Run 10 km",
        status="completed",
        completed_at=MOMENT,
        evidence_note="Strava link",
    )
    goal = GoalSnapshot(
        goal_id=goal_id,
        title="Run a half marathon",
        status="active",
        version=3,
        participants=[
            Participant(
                role="mentee", name="Ada", email="ada@example.com", timezone="Europe/Berlin"
            ),
            Participant(role="mentor", name="Grace", email="grace@example.com"),
        ],
        milestones=[milestone],
        created_at=MOMENT,
        updated_at=MOMENT,
    )
    return build_event(
        MilestoneCompleted,
        MilestoneEventData(goal=goal, milestone=milestone),
        tenant_id="acme",
        partition_key=goal_id,
        source="/followthrough/goals",
        subject=f"goals/{goal_id}/milestones/ms-1",
        time=MOMENT,
        correlation_id="corr-1",
        causation_id="evt-cause",
    )
