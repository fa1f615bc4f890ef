"""What integrators may post to ``POST /v1/events``: CloudEvents describing goal happenings.

These are input types, named ``ingest.*`` so they never look like the events
goals itself publishes (``goal.*``, ``milestone.*``): an integrator reports
that something happened on its side, and goals answers by changing the goal
and publishing its own events. A goal is named by the integrator's
``external_ref`` (or by goals' own ``goal_id``), a milestone by its
``external_ref`` (or ``milestone_id``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.goals.schemas import (
    PARTICIPANTS_EXAMPLE,
    POLICY_EXAMPLE,
    ExternalRef,
    GoalUpsert,
    MilestoneCreate,
    Note,
    Reason,
    contains_nul,
)
from shared.events.envelope import EVENT_ID_PATTERN

MAX_BATCH = 500
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GoalRef(BaseModel):
    """Exactly one of ``external_ref`` (the integrator's id) or ``goal_id``."""

    model_config = _STRICT

    external_ref: ExternalRef | None = None
    goal_id: str | None = Field(default=None, min_length=1, max_length=36)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.external_ref is None) == (self.goal_id is None):
            raise ValueError("give exactly one of external_ref or goal_id")
        return self


class MilestoneRef(BaseModel):
    """Exactly one of ``external_ref`` or ``milestone_id``."""

    model_config = _STRICT

    external_ref: ExternalRef | None = None
    milestone_id: str | None = Field(default=None, min_length=1, max_length=36)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.external_ref is None) == (self.milestone_id is None):
            raise ValueError("give exactly one of external_ref or milestone_id")
        return self


class GoalUpsertedData(GoalUpsert):
    model_config = _STRICT

    external_ref: ExternalRef


class GoalLifecycleData(BaseModel):
    model_config = _STRICT

    goal: GoalRef
    reason: Reason | None = None


class MilestoneUpsertedData(BaseModel):
    model_config = _STRICT

    goal: GoalRef
    milestone: MilestoneCreate


class MilestoneCompletedData(BaseModel):
    model_config = _STRICT

    goal: GoalRef
    milestone: MilestoneRef
    evidence_note: Note | None = None
    completed_at: AwareDatetime | None = Field(
        default=None, description="When it was completed; default the event's time."
    )


class MilestoneSkippedData(BaseModel):
    model_config = _STRICT

    goal: GoalRef
    milestone: MilestoneRef
    note: Note | None = None


class ProgressReportedInData(BaseModel):
    model_config = _STRICT

    goal: GoalRef
    percent: int = Field(ge=0, le=100)
    note: Note | None = None


class _Ingest(BaseModel):
    """The CloudEvents 1.0 envelope of an ingested event (structured JSON).

    ``tenantid`` may be omitted (the credential names the tenant) but must match
    it when given; ``correlationid``, when given, becomes the correlation id of
    every event this one causes (else the request's). Other extension
    attributes are accepted and ignored.
    """

    model_config = ConfigDict(extra="ignore")

    specversion: Literal["1.0"]
    id: str = Field(pattern=EVENT_ID_PATTERN, description="Unique per source; retries reuse it.")
    source: str = Field(min_length=1, max_length=256, examples=["/crm/goals"])
    time: AwareDatetime | None = None
    subject: str | None = Field(default=None, max_length=256)
    datacontenttype: Literal["application/json"] | None = None
    tenantid: str | None = Field(default=None, max_length=64)
    correlationid: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$"
    )

    @field_validator("source", "subject", "tenantid", "data", mode="before", check_fields=False)
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


class IngestGoalUpserted(_Ingest):
    type: Literal["ingest.goal.upserted"]
    data: GoalUpsertedData


class IngestGoalActivated(_Ingest):
    type: Literal["ingest.goal.activated"]
    data: GoalLifecycleData


class IngestGoalPaused(_Ingest):
    type: Literal["ingest.goal.paused"]
    data: GoalLifecycleData


class IngestGoalResumed(_Ingest):
    type: Literal["ingest.goal.resumed"]
    data: GoalLifecycleData


class IngestGoalCompleted(_Ingest):
    type: Literal["ingest.goal.completed"]
    data: GoalLifecycleData


class IngestGoalAbandoned(_Ingest):
    type: Literal["ingest.goal.abandoned"]
    data: GoalLifecycleData


class IngestMilestoneUpserted(_Ingest):
    type: Literal["ingest.milestone.upserted"]
    data: MilestoneUpsertedData


class IngestMilestoneCompleted(_Ingest):
    type: Literal["ingest.milestone.completed"]
    data: MilestoneCompletedData


class IngestMilestoneSkipped(_Ingest):
    type: Literal["ingest.milestone.skipped"]
    data: MilestoneSkippedData


class IngestProgressReported(_Ingest):
    type: Literal["ingest.progress.reported"]
    data: ProgressReportedInData


IngestEvent = Annotated[
    IngestGoalUpserted
    | IngestGoalActivated
    | IngestGoalPaused
    | IngestGoalResumed
    | IngestGoalCompleted
    | IngestGoalAbandoned
    | IngestMilestoneUpserted
    | IngestMilestoneCompleted
    | IngestMilestoneSkipped
    | IngestProgressReported,
    Field(discriminator="type"),
]
LIFECYCLE_ACTIONS = {
    "ingest.goal.activated": "activate",
    "ingest.goal.paused": "pause",
    "ingest.goal.resumed": "resume",
    "ingest.goal.completed": "complete",
    "ingest.goal.abandoned": "abandon",
}


class FieldIssue(BaseModel):
    field: str
    message: str


class ItemResult(BaseModel):
    index: int = Field(description="Position of the item in the posted array.")
    id: str | None = Field(description="The item's event id, when it had one.")
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = Field(default=None, description="Why it was rejected.")
    errors: list[FieldIssue] | None = None
    goal_id: str | None = None
    emitted: list[str] = Field(
        default_factory=list, description="Ids of the events goals published because of it."
    )


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[ItemResult]


_ENVELOPE = {"specversion": "1.0", "source": "/crm/goals", "time": "2030-01-05T10:00:00Z"}
BATCH_EXAMPLE = [
    {
        **_ENVELOPE,
        "id": "crm-1001",
        "type": "ingest.goal.upserted",
        "correlationid": "crm-sync-77",
        "data": {
            "external_ref": "crm-goal-4711",
            "title": "Run a half marathon",
            "participants": PARTICIPANTS_EXAMPLE,
            "policy": POLICY_EXAMPLE,
            "milestones": [{"title": "Run 10 km", "external_ref": "ms-10k"}],
        },
    },
    {
        **_ENVELOPE,
        "id": "crm-1002",
        "type": "ingest.milestone.completed",
        "data": {
            "goal": {"external_ref": "crm-goal-4711"},
            "milestone": {"external_ref": "ms-10k"},
            "evidence_note": "Strava activity 123",
        },
    },
    {
        **_ENVELOPE,
        "id": "crm-1003",
        "type": "ingest.progress.reported",
        "data": {"goal": {"external_ref": "crm-goal-4711"}, "percent": 40},
    },
    {
        **_ENVELOPE,
        "id": "crm-1004",
        "type": "ingest.goal.paused",
        "data": {"goal": {"external_ref": "crm-goal-4711"}, "reason": "Injury"},
    },
]
