"""Response models of the goals API, and the normalised list filters."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.events.catalog.common import Participant
from shared.events.catalog.goals import (
    GoalAbandoned,
    GoalActivated,
    GoalCompleted,
    GoalCreated,
    GoalPaused,
    GoalResumed,
    GoalSnapshot,
    GoalStatus,
    GoalUpdated,
    MilestoneCompleted,
    MilestoneCreated,
    MilestoneOverdue,
    MilestoneSkipped,
    MilestoneStatus,
    MilestoneUpdated,
    ProgressReported,
)
from shared.events.catalog.policy import CheckinPolicy


class MilestoneOut(BaseModel):
    id: str
    external_ref: str | None = None
    title: str
    due_date: date | None
    status: MilestoneStatus
    completed_at: datetime | None
    evidence_note: str | None
    overdue_at: datetime | None = None


class GoalOut(BaseModel):
    id: str
    external_ref: str | None
    title: str
    description: str | None
    category: str | None
    target_date: date | None
    status: GoalStatus
    version: int = Field(description="Also the ETag; send it back in If-Match.")
    timezone: str
    participants: list[Participant]
    policy: CheckinPolicy | None
    milestones: list[MilestoneOut]
    progress_percent: int | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, snapshot: GoalSnapshot) -> GoalOut:
        return cls(
            id=snapshot.goal_id,
            external_ref=snapshot.external_ref,
            title=snapshot.title,
            description=snapshot.description,
            category=snapshot.category,
            target_date=snapshot.target_date,
            status=snapshot.status,
            version=snapshot.version,
            timezone=snapshot.timezone,
            participants=snapshot.participants,
            policy=snapshot.policy,
            milestones=[
                MilestoneOut(
                    id=m.milestone_id,
                    external_ref=m.external_ref,
                    title=m.title,
                    due_date=m.due_date,
                    status=m.status,
                    completed_at=m.completed_at,
                    evidence_note=m.evidence_note,
                    overdue_at=m.overdue_at,
                )
                for m in snapshot.milestones
            ],
            progress_percent=snapshot.progress_percent,
            created_at=snapshot.created_at,
            updated_at=snapshot.updated_at,
        )


class GoalPage(BaseModel):
    items: list[GoalOut]
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )


GoalEvent = Annotated[
    GoalCreated
    | GoalUpdated
    | GoalActivated
    | GoalPaused
    | GoalResumed
    | GoalCompleted
    | GoalAbandoned
    | MilestoneCreated
    | MilestoneUpdated
    | MilestoneCompleted
    | MilestoneSkipped
    | MilestoneOverdue
    | ProgressReported,
    Field(discriminator="type"),
]


class GoalEventPage(BaseModel):
    items: list[GoalEvent] = Field(description="CloudEvents exactly as published, oldest first.")
    next_cursor: str | None


class GoalFilters(BaseModel):
    """The list filters, normalised; part of what a cursor is bound to."""

    model_config = ConfigDict(frozen=True)

    status: GoalStatus | None = None
    mentee_email: str | None = None
    participant_email: str | None = None
    updated_since: datetime | None = None
