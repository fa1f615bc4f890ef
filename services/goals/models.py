"""Tables of the goals database.

Every row carries its tenant and every query filters on it. Participants and
the check-in policy live as JSON on the goal (the snapshot events carry), and
participants are also indexed in ``goal_participants`` so goals can be found
by a person's email on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.tables import new_metadata
from shared.db.types import BigIntPk, JsonType, UtcDateTime


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JsonType}


class Goal(Base):
    __tablename__ = "goals"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_ref"),
        Index("ix_goals_tenant_updated", "tenant_id", "updated_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    external_ref: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    target_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    policy: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    progress_percent: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class GoalParticipant(Base):
    """One participant of a goal, lower-cased email, for the email filters of the goal list."""

    __tablename__ = "goal_participants"
    __table_args__ = (Index("ix_goal_participants_tenant_email", "tenant_id", "email", "role"),)

    goal_id: Mapped[str] = mapped_column(
        ForeignKey("goals.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320))


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (
        Index("ix_milestones_goal", "goal_id", "position"),
        UniqueConstraint("goal_id", "external_ref"),
        Index(
            "ix_milestones_overdue_due",
            "overdue_at",
            sqlite_where=text("status = 'pending' AND overdue_fired_at IS NULL"),
            postgresql_where=text("status = 'pending' AND overdue_fired_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    external_ref: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    completed_at: Mapped[datetime | None]
    evidence_note: Mapped[str | None] = mapped_column(Text)
    overdue_at: Mapped[datetime | None]
    overdue_fired_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    correlation_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """Of the last event about this milestone: ``milestone.overdue`` continues its chain."""
    causation_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """That event's id, which becomes the causation of ``milestone.overdue``."""
    traceparent: Mapped[str | None] = mapped_column(String(128), default=None)
    """The W3C trace context of that change: the overdue firing, days later, links to it."""


class ProgressReport(Base):
    __tablename__ = "progress_reports"
    __table_args__ = (Index("ix_progress_reports_goal", "goal_id", "reported_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    percent: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime]
    created_at: Mapped[datetime]


class GoalEventRecord(Base):
    """Every event the goals service emitted, kept for ``GET /v1/goals/{id}/events``.

    The outbox is purged once published; this is the goal's lasting history,
    stored as the exact structured-mode JSON that went to Kafka.
    """

    __tablename__ = "goal_events"
    __table_args__ = (
        Index("ix_goal_events_goal", "tenant_id", "goal_id", "seq"),
        UniqueConstraint("event_id"),
    )

    seq: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime]
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class IngestedEvent(Base):
    """An integrator's event applied by ``POST /v1/events``; a second copy is a duplicate.

    Keyed by tenant, CloudEvents ``source`` and ``id`` (the pair CloudEvents
    makes unique); only accepted events are remembered, so a rejected event
    may be fixed and sent again under the same id.
    """

    __tablename__ = "ingested_events"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(256), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime]


class Erasure(Base):
    """A request to forget one person in one tenant, and how far each service has got.

    The person is kept only as ``person_key`` (a keyed hash, see
    ``shared/privacy/keys.py``); ``parts`` maps each service to its status,
    the records it changed and when.
    """

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_tenant_person", "tenant_id", "person_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    person_key: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    parts: Mapped[dict[str, Any]] = mapped_column(JsonType)
    goal_ids: Mapped[list[str]] = mapped_column(JsonType)
    requested_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    broker_copies_expire_at: Mapped[datetime]
