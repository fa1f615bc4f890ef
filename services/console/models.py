"""The parts of the services' answers the console shows, as an integrator would model them.

Lenient on purpose (unknown fields are ignored): a service may add fields
without breaking the console; a field the console relies on that disappears
or changes type is a clear error page naming the service.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Upstream(BaseModel):
    model_config = ConfigDict(extra="ignore")


# notifications ------------------------------------------------------------------------


class Endpoint(Upstream):
    id: str
    url: str
    description: str | None = None
    event_types: list[str] = Field(default_factory=list)
    enabled: bool
    disabled_reason: str | None = None
    rate_limit_per_second: float | None = None
    failing_since: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    created_at: datetime


class EndpointCreated(Endpoint):
    secret: str


class EndpointPage(Upstream):
    items: list[Endpoint]
    next_cursor: str | None = None


class EndpointStats(Upstream):
    attempts: int
    succeeded: int
    failed: int
    success_rate: float | None = None
    median_latency_ms: float | None = None


class SecretRotated(Upstream):
    secret: str
    previous_secret_expires_at: datetime


class TestSent(Upstream):
    message_id: str
    delivery_id: str


class Accepted(Upstream):
    deliveries: list[str] = Field(default_factory=list)


class MessageSummary(Upstream):
    id: str
    event_type: str
    kind: str = "event"
    goal_id: str | None = None
    correlation_id: str | None = None
    status: str
    event_time: datetime
    created_at: datetime


class MessagePage(Upstream):
    items: list[MessageSummary]
    next_cursor: str | None = None


class Attempt(Upstream):
    number: int
    started_at: datetime
    latency_ms: float | None = None
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and not self.error


class Delivery(Upstream):
    id: str
    channel: str
    endpoint_id: str | None = None
    recipient: str | None = None
    role: str | None = None
    status: str
    attempts: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    replay_of: str | None = None
    created_at: datetime
    attempt_log: list[Attempt] = Field(default_factory=list)


class MessageDetail(MessageSummary):
    event: dict[str, Any] = Field(default_factory=dict)
    deliveries: list[Delivery] = Field(default_factory=list)


class RoutingDecision(Upstream):
    channel: str
    target: str
    role: str | None = None
    matched: bool
    reason: str
    detail: str | None = None


class Routing(Upstream):
    decisions: list[RoutingDecision] = Field(default_factory=list)


class OutcomeBucket(Upstream):
    start: datetime
    counts: dict[str, int]


class DeliveryOutcomes(Upstream):
    since: datetime
    until: datetime
    bucket_seconds: int
    statuses: list[str]
    totals: dict[str, int]
    buckets: list[OutcomeBucket]


# sessions ---------------------------------------------------------------------------------


class Risk(Upstream):
    score: int
    level: str
    factors: dict[str, float] = Field(default_factory=dict)


class GoalRisk(Upstream):
    goal_id: str
    title: str
    status: str
    schedule_state: str
    mentee: str | None = None
    risk: Risk
    current_streak: int
    consecutive_misses: int
    last_checkin_at: datetime | None = None


class GoalRiskPage(Upstream):
    items: list[GoalRisk]
    next_cursor: str | None = None


class Occurrence(Upstream):
    sequence: int
    due_at: datetime
    local_due: str
    status: str


class Checkin(Upstream):
    id: str
    occurred_at: datetime
    rating: int | None = None
    notes: str | None = None
    source: str | None = None
    status: str
    occurrence: Occurrence | None = None


class Adherence(Upstream):
    on_time_rate: float | None = None
    completed_on_time: int
    missed: int
    late_checkins: int
    current_streak: int
    longest_streak: int
    consecutive_misses: int
    misses_last_30_days: int


class CheckinHistory(Upstream):
    schedule_state: str
    adherence: Adherence
    risk: Risk
    checkins: list[Checkin]
    next_before: datetime | None = None


class ForecastItem(Upstream):
    kind: str
    at: datetime
    local_time: str
    conditional: bool
    occurrence_sequence: int | None = None
    lead_minutes: int | None = None
    level: int | None = None
    notify_roles: list[str] | None = None
    note: str | None = None


class Forecast(Upstream):
    timezone: str
    rule: str | None = None
    schedule_state: str
    until: datetime
    items: list[ForecastItem]
    truncated: bool = False


class CalendarLink(Upstream):
    feed_id: str
    scope: str
    url: str | None = None
    revoked_at: datetime | None = None
    expires_at: datetime


class ParticipantCalendars(Upstream):
    role: str
    name: str
    email: str
    goal_feed: CalendarLink
    person_feed: CalendarLink


class GoalCalendars(Upstream):
    goal_id: str
    participants: list[ParticipantCalendars]


# goals --------------------------------------------------------------------------------------


class Participant(Upstream):
    role: str
    name: str
    email: str
    timezone: str | None = None


class Milestone(Upstream):
    id: str
    title: str
    due_date: date | None = None
    status: str
    completed_at: datetime | None = None
    overdue_at: datetime | None = None


class Goal(Upstream):
    id: str
    title: str
    description: str | None = None
    category: str | None = None
    target_date: date | None = None
    status: str
    timezone: str
    participants: list[Participant] = Field(default_factory=list)
    policy: dict[str, Any] | None = None
    milestones: list[Milestone] = Field(default_factory=list)
    progress_percent: int | None = None
    created_at: datetime
    updated_at: datetime


# dead letters (every service) ---------------------------------------------------------------


class DeadLetter(Upstream):
    id: str
    topic: str
    partition: int
    offset: int
    reason: str
    error: str
    event_id: str | None = None
    event_type: str | None = None
    tenant_id: str | None = None
    consumer_group: str
    dead_lettered_at: datetime
    status: str
    redriven_at: datetime | None = None


class DeadLetterPage(Upstream):
    items: list[DeadLetter]
    next_cursor: str | None = None


# retention (every service) -------------------------------------------------------------


class RetentionWindow(Upstream):
    kind: str
    seconds: int
    default_seconds: int
    minimum_seconds: int
    tenant_seconds: int | None = None
    per_tenant: bool
    why: str


class Retention(Upstream):
    windows: list[RetentionWindow]
