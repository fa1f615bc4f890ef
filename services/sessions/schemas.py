"""Request and response models of the sessions API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from shared.events.catalog.common import Identifier, Participant, Role
from shared.events.catalog.sessions import Risk

CheckinStatus = Literal["on_time", "late", "unscheduled"]
OccurrenceStatus = Literal["open", "completed", "missed"]
SessionStatus = Literal["scheduled", "held", "no_show", "cancelled"]
LeadMinutes = Annotated[int, Field(ge=1, le=10_080)]


def _sane_instant(value: datetime) -> datetime:
    """An aware instant between 1970 and 2200, so arithmetic on it can never overflow."""
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not 1970 <= year <= 2200:
        raise ValueError("must be between 1970 and 2200")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_sane_instant)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckinCreate(_Strict):
    goal_id: Identifier
    occurred_at: Instant | None = Field(
        default=None, description="When the mentee checked in; now when omitted."
    )
    notes: str | None = Field(default=None, max_length=4000)
    rating: int | None = Field(default=None, ge=1, le=5, description="Self-rating, 1 to 5.")
    blockers: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=20
    )
    source: str | None = Field(default=None, min_length=1, max_length=64, examples=["mobile-app"])


class OccurrenceOut(BaseModel):
    id: str
    sequence: int
    due_at: datetime
    local_due: str
    timezone: str
    opens_at: datetime
    deadline_at: datetime
    status: OccurrenceStatus
    snoozed_minutes: int
    acknowledged_at: datetime | None
    acknowledged_by: Role | None
    dst_decision: str | None


class CheckinOut(BaseModel):
    id: str
    goal_id: str
    occurred_at: datetime
    recorded_at: datetime
    rating: int | None
    notes: str | None
    blockers: list[str]
    source: str | None
    status: CheckinStatus
    late: bool
    occurrence_id: str | None
    occurrence: OccurrenceOut | None = None


class Adherence(BaseModel):
    on_time_rate: float | None = Field(
        description="On-time check-ins over resolved occurrences; null before the first."
    )
    completed_on_time: int
    missed: int
    late_checkins: int
    current_streak: int
    longest_streak: int
    consecutive_misses: int
    misses_last_30_days: int


class CheckinList(BaseModel):
    goal_id: str
    schedule_state: str
    adherence: Adherence
    risk: Risk
    checkins: list[CheckinOut]
    next_before: datetime | None = Field(
        description="Pass as ``before`` to read the next (older) page; null on the last page."
    )


class AcknowledgeRequest(_Strict):
    role: Role = "mentee"
    occurrence_id: Identifier | None = Field(
        default=None, description="The missed occurrence; the most recent miss when omitted."
    )


class AcknowledgeOut(BaseModel):
    goal_id: str
    occurrence: OccurrenceOut
    acknowledged_by: Role
    cancelled_escalations: int


class SnoozeRequest(_Strict):
    minutes: int = Field(ge=1, le=10_080, description="Bounded by the service's snooze maximum.")
    occurrence_id: Identifier | None = Field(
        default=None, description="The open occurrence; the current one when omitted."
    )


class SnoozeOut(BaseModel):
    goal_id: str
    occurrence: OccurrenceOut
    snoozed_minutes: int


class SessionCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "goal_id": "0b7e8f2a-3c1d-4e5f-9a8b-7c6d5e4f3a2b",
                    "starts_at": "2030-05-06T15:00:00Z",
                    "duration_minutes": 45,
                    "link": "https://meet.example.com/ada-grace",
                    "reminder_lead_minutes": [1440, 30],
                }
            ]
        },
    )

    goal_id: Identifier
    starts_at: Instant
    duration_minutes: int = Field(ge=1, le=1440)
    participants: list[Participant] | None = Field(
        default=None, max_length=50, description="The goal's participants when omitted."
    )
    location: str | None = Field(default=None, min_length=1, max_length=500)
    link: HttpUrl | None = Field(default=None)
    reminder_lead_minutes: list[LeadMinutes] = Field(default_factory=lambda: [60], max_length=5)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.location is None and self.link is None:
            raise ValueError("give a location or a link")
        if len(set(self.reminder_lead_minutes)) != len(self.reminder_lead_minutes):
            raise ValueError("reminder_lead_minutes must not repeat")
        if self.link is not None and len(str(self.link)) > 2000:
            raise ValueError("link is longer than 2000 characters")
        return self


class SessionOut(BaseModel):
    id: str
    goal_id: str
    starts_at: datetime
    duration_minutes: int
    participants: list[Participant]
    location: str | None
    link: str | None
    status: SessionStatus
    reminder_lead_minutes: list[int]
    sequence: int = Field(
        description="iCalendar SEQUENCE: 0 when scheduled, +1 per reschedule and at cancelling."
    )
    created_at: datetime
    updated_at: datetime


class SessionReschedule(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"starts_at": "2030-05-07T15:00:00Z"}]},
    )

    starts_at: Instant
    duration_minutes: int | None = Field(
        default=None, ge=1, le=1440, description="Unchanged when omitted."
    )


ForecastKind = Literal[
    "checkin.due", "checkin.due_soon", "checkin.missed", "checkin.escalated", "session.reminder"
]


class ForecastItem(BaseModel):
    kind: ForecastKind
    at: datetime
    local_time: str = Field(description="``at`` on the wall clock of the goal's zone.")
    conditional: bool = Field(
        description="True for what is sent only if the check-in does not come (miss, escalation)."
    )
    occurrence_sequence: int | None = None
    occurrence_due_at: datetime | None = None
    lead_minutes: int | None = None
    level: int | None = None
    notify_roles: list[Role] | None = None
    consecutive_misses: int | None = None
    session_id: str | None = None
    note: str | None = Field(default=None, description="A quiet-hours shift or DST decision.")


class Forecast(BaseModel):
    goal_id: str
    timezone: str
    rule: str | None
    schedule_state: str
    generated_at: datetime
    until: datetime
    items: list[ForecastItem]
    truncated: bool = Field(description="True when more items fell before ``until``.")


class GoalRiskOut(BaseModel):
    goal_id: str
    title: str
    status: str = Field(description="The goal's status, as last heard from goals.")
    schedule_state: str
    mentee: str | None = Field(description="The mentee's name, when the goal has one.")
    risk: Risk
    current_streak: int
    consecutive_misses: int
    last_checkin_at: datetime | None


class GoalRiskPage(BaseModel):
    items: list[GoalRiskOut] = Field(description="Highest risk first; ties by goal id.")
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )


class CalendarLink(BaseModel):
    feed_id: str
    scope: Literal["goal", "person"] = Field(
        description="`goal`: this goal only; `person`: all the person's goals of the tenant."
    )
    url: str | None = Field(
        description="The feed URL (no credential needed); null once revoked or expired."
    )
    version: int = Field(description="Increases with every rotation; older URLs answer 404.")
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ParticipantCalendars(BaseModel):
    role: Role
    name: str
    email: str
    goal_feed: CalendarLink
    person_feed: CalendarLink


class GoalCalendars(BaseModel):
    goal_id: str
    participants: list[ParticipantCalendars]
