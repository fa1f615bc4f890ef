"""Events the goals service emits (topic ``goals``).

Each carries the whole goal snapshot, versioned, so consumers keep their own
projection without ever calling back, and the newer version always wins.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import Field, computed_field

from shared.events.catalog.common import Identifier, Participant, ShortText
from shared.events.catalog.policy import CheckinPolicy
from shared.events.envelope import CloudEvent, EventData

GoalStatus = Literal["draft", "active", "paused", "completed", "abandoned"]
CLOSED_GOAL_STATUSES: tuple[GoalStatus, ...] = ("completed", "abandoned")
"""A goal in one of these is over for good: what each service keeps of it is purged after
its ``closed_goals`` window."""
MilestoneStatus = Literal["pending", "completed", "skipped"]
GOALS_TOPIC = "goals"


class MilestoneSnapshot(EventData):
    milestone_id: Identifier
    title: ShortText
    due_date: date | None = None
    status: MilestoneStatus = "pending"
    completed_at: datetime | None = None
    evidence_note: str | None = Field(default=None, max_length=2000)
    external_ref: str | None = Field(
        default=None, max_length=128, description="The integrator's own id for the milestone."
    )
    overdue_at: datetime | None = Field(
        default=None,
        description="When a pending milestone becomes overdue: the end of its due date "
        "(midnight after it) in the goal's time zone.",
    )


class GoalSnapshot(EventData):
    goal_id: Identifier
    external_ref: str | None = Field(default=None, max_length=128)
    title: ShortText
    description: str | None = Field(default=None, max_length=4000)
    category: str | None = Field(default=None, max_length=64)
    target_date: date | None = None
    status: GoalStatus
    version: int = Field(ge=1, description="Increases with every change; the newer version wins.")
    participants: list[Participant] = Field(min_length=1, max_length=50)
    policy: CheckinPolicy | None = None
    milestones: list[MilestoneSnapshot] = Field(default_factory=list, max_length=200)
    created_at: datetime
    updated_at: datetime
    progress_percent: int | None = Field(
        default=None, ge=0, le=100, description="The latest reported progress, if any."
    )

    @property
    def mentee(self) -> Participant:
        return next(p for p in self.participants if p.role == "mentee")

    @computed_field(  # type: ignore[prop-decorator]
        description="The goal's zone: the policy's, else the mentee's, else UTC."
    )
    @property
    def timezone(self) -> str:
        if self.policy is not None:
            return self.policy.timezone
        mentee = next((p for p in self.participants if p.role == "mentee"), None)
        return (mentee.timezone if mentee else None) or "UTC"


class GoalEventData(EventData):
    goal: GoalSnapshot
    previous_status: GoalStatus | None = None
    reason: str | None = Field(
        default=None, max_length=500, description="Why, when the caller said (pause, abandon)."
    )


class MilestoneEventData(EventData):
    goal: GoalSnapshot
    milestone: MilestoneSnapshot


class ProgressReportedData(EventData):
    goal: GoalSnapshot
    percent: int = Field(ge=0, le=100)
    note: str | None = Field(default=None, max_length=2000)
    reported_at: datetime
    previous_percent: int | None = Field(default=None, ge=0, le=100)


class _GoalTopicEvent(CloudEvent):
    topic: ClassVar[str] = GOALS_TOPIC


class GoalCreated(_GoalTopicEvent):
    """A goal was created (POST, PUT by ref or ingestion); data.goal is the whole snapshot."""

    type: Literal["goal.created"] = "goal.created"
    data: GoalEventData


class GoalUpdated(_GoalTopicEvent):
    """A goal's own fields, participants or check-in policy changed."""

    type: Literal["goal.updated"] = "goal.updated"
    data: GoalEventData


class GoalActivated(_GoalTopicEvent):
    """A draft goal became active: check-ins start."""

    type: Literal["goal.activated"] = "goal.activated"
    data: GoalEventData


class GoalPaused(_GoalTopicEvent):
    """An active goal was paused: nothing is due and nothing is sent until it resumes."""

    type: Literal["goal.paused"] = "goal.paused"
    data: GoalEventData


class GoalResumed(_GoalTopicEvent):
    """A paused goal became active again."""

    type: Literal["goal.resumed"] = "goal.resumed"
    data: GoalEventData


class GoalCompleted(_GoalTopicEvent):
    """A goal was completed (from active or paused); it is closed."""

    type: Literal["goal.completed"] = "goal.completed"
    data: GoalEventData


class GoalAbandoned(_GoalTopicEvent):
    """A goal was abandoned (from draft, active or paused); it is closed."""

    type: Literal["goal.abandoned"] = "goal.abandoned"
    data: GoalEventData


class MilestoneCreated(_GoalTopicEvent):
    """A milestone was added to a goal."""

    type: Literal["milestone.created"] = "milestone.created"
    data: MilestoneEventData


class MilestoneUpdated(_GoalTopicEvent):
    """A milestone's title, due date or external ref changed."""

    type: Literal["milestone.updated"] = "milestone.updated"
    data: MilestoneEventData


class MilestoneCompleted(_GoalTopicEvent):
    """A pending milestone was completed; data.milestone has the evidence note."""

    type: Literal["milestone.completed"] = "milestone.completed"
    data: MilestoneEventData


class MilestoneSkipped(_GoalTopicEvent):
    """A pending milestone was skipped."""

    type: Literal["milestone.skipped"] = "milestone.skipped"
    data: MilestoneEventData


class MilestoneOverdue(_GoalTopicEvent):
    """A pending milestone's due date passed (end of that day in the goal's zone); once."""

    type: Literal["milestone.overdue"] = "milestone.overdue"
    data: MilestoneEventData


class ProgressReported(_GoalTopicEvent):
    """Progress (0-100 %) was reported on a goal."""

    type: Literal["progress.reported"] = "progress.reported"
    data: ProgressReportedData


GOAL_EVENTS: tuple[type[CloudEvent], ...] = (
    GoalCreated,
    GoalUpdated,
    GoalActivated,
    GoalPaused,
    GoalResumed,
    GoalCompleted,
    GoalAbandoned,
    MilestoneCreated,
    MilestoneUpdated,
    MilestoneCompleted,
    MilestoneSkipped,
    MilestoneOverdue,
    ProgressReported,
)
