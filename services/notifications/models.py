"""Tables of the notifications database.

A message is one domain event as received (stored once, by event id, with
the routing decision made for it); a delivery is that message owed to one
target (a webhook endpoint or an email recipient) and doubles as the durable
work queue; an attempt is one try. Email configuration (rules, templates,
preferences, unsubscribes) and the digest's collected entries live beside
them, all scoped by tenant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.tables import new_metadata
from shared.db.types import BigIntPk, JsonType, UtcDateTime


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JsonType}


class Endpoint(Base):
    __tablename__ = "endpoints"
    __table_args__ = (Index("ix_endpoints_tenant", "tenant_id", "enabled"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JsonType)
    payload_filter: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    enabled: Mapped[bool] = mapped_column(Boolean)
    rate_limit_per_second: Mapped[float | None] = mapped_column(Float)
    headers: Mapped[dict[str, Any]] = mapped_column(JsonType)
    secret: Mapped[str] = mapped_column(Text, comment="encrypted at rest")
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RoutingVersion(Base):
    """One row whose version changes with every change to endpoints or email rules.

    What a process caches for routing (``services.notifications.routing``) is
    current exactly while this number is the one it was loaded under.
    """

    __tablename__ = "routing_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default="event")
    goal_id: Mapped[str | None] = mapped_column(String(128))
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    routing: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    event_time: Mapped[datetime]
    created_at: Mapped[datetime]
    traceparent: Mapped[str | None] = mapped_column(String(128), default=None)
    """W3C trace context of the event's handling here (tracing on): its attempts continue it."""


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_message", "message_id"),
        Index("ix_deliveries_endpoint", "endpoint_id", "created_at"),
        Index("ix_deliveries_tenant_updated", "tenant_id", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[str | None] = mapped_column(String(36))
    recipient: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    replay_of: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_delivery", "delivery_id", "number"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    latency_ms: Mapped[float | None] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class EmailRule(Base):
    """A tenant's override of which roles receive one event type (empty roles: nobody)."""

    __tablename__ = "email_rules"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    roles: Mapped[list[str]] = mapped_column(JsonType)
    updated_at: Mapped[datetime]


class EmailTemplate(Base):
    """A tenant's override of one event type's email (Jinja2, rendered sandboxed)."""

    __tablename__ = "email_templates"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class Preference(Base):
    """How one recipient (by email, per tenant) wants to hear from us."""

    __tablename__ = "preferences"
    __table_args__ = (Index("ix_preferences_delivery", "delivery"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    delivery: Mapped[str] = mapped_column(String(16))
    digest_day: Mapped[str | None] = mapped_column(String(2))
    digest_hour: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str | None] = mapped_column(String(64))
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    last_digest_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class Unsubscribe(Base):
    __tablename__ = "unsubscribes"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100), primary_key=True)
    created_at: Mapped[datetime]


class DigestEntry(Base):
    """One event remembered for a digest recipient until their weekly email rolls it up."""

    __tablename__ = "digest_entries"
    __table_args__ = (Index("ix_digest_entries_pending", "tenant_id", "email", "digest_id"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    recipient_name: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(100))
    goal_id: Mapped[str] = mapped_column(String(128))
    goal_title: Mapped[str] = mapped_column(String(200))
    mentee_name: Mapped[str] = mapped_column(String(200))
    risk_score: Mapped[int | None] = mapped_column(Integer)
    streak: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime]
    digest_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]


class GoalQuietHours(Base):
    """The quiet hours of each goal's check-in policy, kept from goal events.

    With the goal's status and when it was last written, so the row of a goal
    closed long ago is purged like the goal itself (the ``closed_goals`` rule).
    """

    __tablename__ = "goal_quiet_hours"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    goal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(16))
    """None on rows written before the status was kept, until the goal's next event."""
    updated_at: Mapped[datetime | None]


class Suppression(Base):
    """An erased person: no email goes to them in this tenant again.

    Only the person's key is kept (a keyed hash of tenant and address, see
    ``shared/privacy/keys.py``), so the entry cannot be read back into an address.
    """

    __tablename__ = "suppressions"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    erasure_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class ErasedMessage(Base):
    """A stored message rewritten by an erasure: it is never replayed."""

    __tablename__ = "erased_messages"

    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    erasure_id: Mapped[str | None] = mapped_column(String(128))
    erased_at: Mapped[datetime]
