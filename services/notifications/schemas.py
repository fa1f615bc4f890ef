"""Request and response models of the notifications API (input models forbid unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints

from shared.events.catalog.common import Role, TimeZoneName

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL; free text refuses it up front (422, not a 500)."""
SafeText = Annotated[str, Field(pattern=NO_NUL)]

EventTypeFilter = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$",
        examples=["checkin.*"],
    ),
]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")]
HeaderValue = Annotated[str, Field(max_length=1000, pattern=r"^[^\r\n\x00]*$")]
EventType = Annotated[str, Field(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=100)]
WebhookUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]
HourMinute = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]

PAYLOAD_FILTER_DOC = (
    "Conditions on fields of the event's data, all of which must hold: "
    '{"goal.category": "health"} or {"goal.category": {"$in": ["health", "career"]}}. '
    "Operators: $eq, $ne, $in, $nin, $exists."
)


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl = Field(examples=["https://example.com/webhooks/followthrough"])
    description: SafeText | None = Field(default=None, max_length=500)
    event_types: list[EventTypeFilter] = Field(
        default_factory=list,
        max_length=100,
        description="Event types to receive; 'checkin.*' matches a family; empty means all.",
        examples=[["milestone.completed", "checkin.*"]],
    )
    payload_filter: dict[str, Any] | None = Field(default=None, description=PAYLOAD_FILTER_DOC)
    enabled: bool = True
    rate_limit_per_second: float | None = Field(default=None, gt=0, le=10_000)
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, max_length=20, description="Sent with every webhook."
    )


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    description: SafeText | None = Field(default=None, max_length=500)
    event_types: list[EventTypeFilter] | None = Field(default=None, max_length=100)
    payload_filter: dict[str, Any] | None = Field(default=None, description=PAYLOAD_FILTER_DOC)
    enabled: bool | None = None
    rate_limit_per_second: float | None = Field(default=None, gt=0, le=10_000)
    headers: dict[HeaderName, HeaderValue] | None = Field(default=None, max_length=20)


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    payload_filter: dict[str, Any] | None
    enabled: bool
    disabled_reason: str | None
    rate_limit_per_second: float | None
    headers: dict[str, str]
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="While set and in the future, the previous secret still signs too."
    )
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_...). Shown only in this response; store it now."
    )


class EndpointPage(BaseModel):
    items: list[EndpointOut]
    next_cursor: str | None


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret; shown only in this response.")
    previous_secret_expires_at: datetime


class TestSent(BaseModel):
    message_id: str
    delivery_id: str


class EndpointStats(BaseModel):
    endpoint_id: str
    window_hours: float
    attempts: int
    succeeded: int
    failed: int
    success_rate: float | None = Field(description="Succeeded / attempts; null with no attempts.")
    median_latency_ms: float | None


class AttemptOut(BaseModel):
    number: int
    started_at: datetime
    latency_ms: float | None
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: str
    channel: Literal["webhook", "email"]
    endpoint_id: str | None
    recipient: str | None = Field(description="Email address, for email deliveries.")
    role: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    replay_of: str | None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[AttemptOut] = Field(default_factory=list)


class MessageSummary(BaseModel):
    id: str
    event_type: str
    kind: str
    goal_id: str | None
    correlation_id: str | None
    status: Literal["pending", "succeeded", "failed", "unrouted", "mixed"]
    event_time: datetime
    created_at: datetime


class MessageDetail(MessageSummary):
    event: dict[str, Any]
    deliveries: list[DeliveryOut]


class MessagePage(BaseModel):
    items: list[MessageSummary]
    next_cursor: str | None


class OutcomeBucket(BaseModel):
    start: datetime = Field(description="Start of the hour; the bucket ends an hour later.")
    counts: dict[str, int] = Field(description="Deliveries last changed in this hour, by status.")


class DeliveryOutcomes(BaseModel):
    since: datetime
    until: datetime
    bucket_seconds: int
    statuses: list[str] = Field(description="Every status counted, in display order.")
    totals: dict[str, int]
    buckets: list[OutcomeBucket] = Field(description="Oldest first, one per hour.")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(
        default=None,
        max_length=36,
        pattern=r"^[A-Za-z0-9-]+$",
        description="Replay to this endpoint only; omitted: every enabled endpoint matching now.",
    )


class ReplayAccepted(BaseModel):
    message_id: str
    deliveries: list[str]


class RecoverAccepted(BaseModel):
    endpoint_id: str
    since: datetime
    deliveries: list[str]


class RoutingDecision(BaseModel):
    channel: Literal["webhook", "email"]
    target: str = Field(description="Endpoint id, or the recipient's email address.")
    role: str | None = None
    matched: bool
    reason: Literal[
        "matched",
        "disabled",
        "event_type_filter",
        "payload_filter",
        "rule",
        "unsubscribed",
        "digest",
        "quiet_hours",
        "erased",
    ] = Field(description="`erased`: the recipient was erased on request, never emailed again.")
    detail: str | None = None


class Routing(BaseModel):
    event_id: str
    event_type: str
    decisions: list[RoutingDecision]


class EmailRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[Role | Literal["*"]] = Field(
        max_length=6, description="Roles emailed about this type; '*' is everyone; [] nobody."
    )


class EmailRuleOut(BaseModel):
    event_type: str
    roles: list[str]
    source: Literal["default", "tenant"]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: SafeText = Field(min_length=1, max_length=1000)
    text: SafeText = Field(min_length=1, max_length=100_000)
    html: SafeText = Field(min_length=1, max_length=200_000)


class TemplateOut(TemplateIn):
    event_type: str
    updated_at: datetime


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery: Literal["immediate", "digest"] = "immediate"
    digest_day: Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"] | None = None
    digest_hour: int | None = Field(default=None, ge=0, le=23)
    timezone: TimeZoneName | None = None
    quiet_start: HourMinute | None = None
    quiet_end: HourMinute | None = None
    resubscribe: list[EventType] = Field(
        default_factory=list, max_length=100, description="Undo unsubscribes from these types."
    )


class PreferenceOut(BaseModel):
    email: str = Field(description="The address as given (lower-cased).")
    delivery: Literal["immediate", "digest"]
    digest_day: str
    digest_hour: int
    timezone: str | None
    quiet_start: str | None
    quiet_end: str | None
    unsubscribed: list[str]
    last_digest_at: datetime | None


class Unsubscribed(BaseModel):
    unsubscribed: bool = True
    event_type: str
