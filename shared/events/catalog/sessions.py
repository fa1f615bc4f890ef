"""Events the sessions service emits (topic ``sessions``): check-ins, streaks, coaching sessions.

Timed events (due soon, missed, escalated) carry their reasoning and the
goal's risk, so an operator reading a log line or an integrator reading a
webhook knows why it fired without asking anyone.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.catalog.common import Identifier, Participant, Role, ShortText, TimeZoneName
from shared.events.envelope import CloudEvent, EventData

SESSIONS_TOPIC = "sessions"


class GoalRef(EventData):
    """What a notification needs to know about the goal, copied from the sessions projection."""

    goal_id: Identifier
    external_ref: str | None = None
    title: ShortText
    category: str | None = None
    timezone: TimeZoneName
    participants: list[Participant] = Field(min_length=1, max_length=50)


class Occurrence(EventData):
    occurrence_id: Identifier
    sequence: int = Field(ge=1, description="1 for the first check-in of the schedule.")
    due_at: datetime = Field(description="UTC instant the check-in is due.")
    local_due: str = Field(description="Wall-clock due time in the zone, ISO 8601 without offset.")
    timezone: TimeZoneName
    deadline_at: datetime = Field(description="due_at plus grace (and any snooze).")


class Risk(EventData):
    score: int = Field(ge=0, le=100)
    level: Literal["low", "medium", "high"]
    factors: dict[str, float] = Field(default_factory=dict)


class Reasoning(EventData):
    """Why a timed event fired, in terms an operator can check against the policy."""

    rule: str = Field(description="The cadence, e.g. 'weekly MO at 09:00' or the RRULE.")
    local_due: str
    timezone: TimeZoneName
    grace_minutes: int
    occurrence_number: int
    consecutive_misses: int = 0
    ladder_level: int = 0
    lead_minutes: int | None = None
    dst_decision: str | None = None
    quiet_hours_delay: str | None = None
    scheduled_for: datetime
    fired_at: datetime
    late: bool = False


class CheckinDueSoonData(EventData):
    goal: GoalRef
    occurrence: Occurrence
    lead_minutes: int
    reasoning: Reasoning
    risk: Risk


class CheckinMissedData(EventData):
    goal: GoalRef
    occurrence: Occurrence
    consecutive_misses: int = Field(ge=1)
    reasoning: Reasoning
    risk: Risk


class CheckinEscalatedData(EventData):
    goal: GoalRef
    occurrence: Occurrence
    consecutive_misses: int = Field(ge=1)
    level: int = Field(ge=1, description="1-based step of the escalation ladder.")
    notify_roles: list[Role]
    recipients: list[Participant]
    reasoning: Reasoning
    risk: Risk


class CheckinRecord(EventData):
    checkin_id: Identifier
    occurred_at: datetime
    rating: int | None = Field(default=None, ge=1, le=5)
    notes: str | None = Field(default=None, max_length=4000)
    blockers: list[str] = Field(default_factory=list, max_length=20)
    source: str | None = Field(default=None, max_length=64)
    late: bool = False
    occurrence_id: Identifier | None = None


class CheckinCompletedData(EventData):
    goal: GoalRef
    checkin: CheckinRecord
    occurrence: Occurrence | None = None
    risk: Risk


class CheckinAcknowledgedData(EventData):
    goal: GoalRef
    occurrence: Occurrence
    acknowledged_by: Role
    cancelled_escalations: int = 0


class CheckinSnoozedData(EventData):
    goal: GoalRef
    occurrence: Occurrence
    snoozed_minutes: int = Field(ge=1)


class StreakUpdatedData(EventData):
    goal: GoalRef
    current: int = Field(ge=0)
    longest: int = Field(ge=0)


class StreakBrokenData(EventData):
    goal: GoalRef
    previous: int = Field(ge=0)
    longest: int = Field(ge=0)
    occurrence: Occurrence


class CoachingSession(EventData):
    session_id: Identifier
    starts_at: datetime
    duration_minutes: int = Field(ge=1, le=1440)
    participants: list[Participant] = Field(default_factory=list)
    location: str | None = Field(default=None, max_length=500)
    link: str | None = Field(default=None, max_length=2000)
    status: Literal["scheduled", "held", "no_show", "cancelled"]
    sequence: int = Field(
        default=0,
        ge=0,
        description=(
            "The iCalendar SEQUENCE of the session: 0 when scheduled, one more at each "
            "reschedule and at cancelling (invites and feeds use it)."
        ),
    )
    previous_starts_at: datetime | None = Field(
        default=None, description="On session.rescheduled: the start before the change."
    )


class SessionEventData(EventData):
    goal: GoalRef
    session: CoachingSession


class SessionReminderReasoning(EventData):
    """Why a session reminder fired: the session's local start and the lead time."""

    local_start: str = Field(description="Wall-clock start in the zone, ISO 8601 without offset.")
    timezone: TimeZoneName
    lead_minutes: int
    scheduled_for: datetime
    fired_at: datetime
    late: bool = False


class SessionReminderData(EventData):
    goal: GoalRef
    session: CoachingSession
    lead_minutes: int
    reasoning: SessionReminderReasoning | None = None
    risk: Risk | None = None


class _SessionsTopicEvent(CloudEvent):
    topic: ClassVar[str] = SESSIONS_TOPIC


class CheckinDueSoon(_SessionsTopicEvent):
    type: Literal["checkin.due_soon"] = "checkin.due_soon"
    data: CheckinDueSoonData


class CheckinMissed(_SessionsTopicEvent):
    type: Literal["checkin.missed"] = "checkin.missed"
    data: CheckinMissedData


class CheckinEscalated(_SessionsTopicEvent):
    type: Literal["checkin.escalated"] = "checkin.escalated"
    data: CheckinEscalatedData


class CheckinCompleted(_SessionsTopicEvent):
    type: Literal["checkin.completed"] = "checkin.completed"
    data: CheckinCompletedData


class CheckinAcknowledged(_SessionsTopicEvent):
    type: Literal["checkin.acknowledged"] = "checkin.acknowledged"
    data: CheckinAcknowledgedData


class CheckinSnoozed(_SessionsTopicEvent):
    type: Literal["checkin.snoozed"] = "checkin.snoozed"
    data: CheckinSnoozedData


class StreakUpdated(_SessionsTopicEvent):
    type: Literal["streak.updated"] = "streak.updated"
    data: StreakUpdatedData


class StreakBroken(_SessionsTopicEvent):
    type: Literal["streak.broken"] = "streak.broken"
    data: StreakBrokenData


class SessionScheduled(_SessionsTopicEvent):
    type: Literal["session.scheduled"] = "session.scheduled"
    data: SessionEventData


class SessionRescheduled(_SessionsTopicEvent):
    """A scheduled session moved (``session.previous_starts_at`` says from when)."""

    type: Literal["session.rescheduled"] = "session.rescheduled"
    data: SessionEventData


class SessionReminder(_SessionsTopicEvent):
    type: Literal["session.reminder"] = "session.reminder"
    data: SessionReminderData


class SessionHeld(_SessionsTopicEvent):
    type: Literal["session.held"] = "session.held"
    data: SessionEventData


class SessionNoShow(_SessionsTopicEvent):
    type: Literal["session.no_show"] = "session.no_show"
    data: SessionEventData


class SessionCancelled(_SessionsTopicEvent):
    type: Literal["session.cancelled"] = "session.cancelled"
    data: SessionEventData


SESSION_EVENTS: tuple[type[CloudEvent], ...] = (
    CheckinDueSoon,
    CheckinMissed,
    CheckinEscalated,
    CheckinCompleted,
    CheckinAcknowledged,
    CheckinSnoozed,
    StreakUpdated,
    StreakBroken,
    SessionScheduled,
    SessionRescheduled,
    SessionReminder,
    SessionHeld,
    SessionNoShow,
    SessionCancelled,
)
