"""Tables of the sessions database.

A goal's row is both its projection (the latest snapshot from goal events)
and the state of its schedule (streaks, misses in a row, where the plan
stands); it is also the lock every change to one goal's timeline takes
first, so the consumer, the API and any number of scheduler replicas never
interleave on one goal.

Only the *next* occurrence of a schedule and its timers exist ahead of time;
the one after is planned when it completes or is missed, so the tables grow
with the number of goals, not with how far ahead anyone looks.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.tables import new_metadata
from shared.db.types import JsonType, UtcDateTime


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = {
        datetime: UtcDateTime,
        dict[str, Any]: JsonType,
        list[Any]: JsonType,
        list[int]: JsonType,
        list[str]: JsonType,
        list[dict[str, Any]]: JsonType,
    }


class GoalProjection(Base):
    """The sessions service's own copy of each goal (newer version wins) and its schedule state."""

    __tablename__ = "goal_projections"
    __table_args__ = (Index("ix_goal_projections_tenant", "tenant_id", "status"),)

    goal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonType)
    updated_at: Mapped[datetime]

    schedule_state: Mapped[str] = mapped_column(String(16), default="none")
    """none (no policy or never active), active, paused, ended."""
    anchor_date: Mapped[date | None] = mapped_column(Date, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    next_sequence: Mapped[int] = mapped_column(Integer, default=1)
    current_streak: Mapped[int] = mapped_column(Integer, default=0)
    longest_streak: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_misses: Mapped[int] = mapped_column(Integer, default=0)
    last_checkin_at: Mapped[datetime | None] = mapped_column(default=None)
    ratings: Mapped[list[int]] = mapped_column(JsonType, default=list)


class Occurrence(Base):
    """One dated check-in of a schedule. Its id is derived from (goal, due time)."""

    __tablename__ = "occurrences"
    __table_args__ = (
        Index("ix_occurrences_goal_due", "goal_id", "due_at"),
        Index(
            "ix_occurrences_open",
            "goal_id",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(String(128))
    sequence: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    nominal_local: Mapped[str] = mapped_column(String(32))
    local_due: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64))
    opens_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    grace_minutes: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(600))
    dst_decision: Mapped[str | None] = mapped_column(String(300), default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")
    """open, completed (on time), missed."""
    snoozed_minutes: Mapped[int] = mapped_column(Integer, default=0)
    checkin_id: Mapped[str | None] = mapped_column(String(36), default=None)
    misses_in_row: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(16), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class Checkin(Base):
    __tablename__ = "checkins"
    __table_args__ = (Index("ix_checkins_goal_occurred", "goal_id", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    blockers: Mapped[list[str]] = mapped_column(JsonType, default=list)
    source: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16))
    """on_time, late (after the occurrence was missed), unscheduled (no occurrence)."""
    occurrence_id: Mapped[str | None] = mapped_column(String(36), default=None)


class Timer(Base):
    """A moment something must be sent. Its id is the id of the event it will emit.

    Unfired rows are found by the partial index on due time; fired rows stay
    for a while so that re-planning the same moment inserts nothing.
    """

    __tablename__ = "timers"
    __table_args__ = (
        Index(
            "ix_timers_due_unfired",
            "due_at",
            sqlite_where=text("fired_at IS NULL"),
            postgresql_where=text("fired_at IS NULL"),
        ),
        Index("ix_timers_goal", "goal_id"),
        Index("ix_timers_occurrence", "occurrence_id"),
        Index(
            "ix_timers_fired_at",
            "fired_at",
            sqlite_where=text("fired_at IS NOT NULL"),
            postgresql_where=text("fired_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    """checkin.due_soon, checkin.missed, checkin.escalated, session.reminder."""
    level: Mapped[int] = mapped_column(Integer)
    """Lead minutes for reminders, ladder level for escalations, 0 for a miss."""
    occurrence_id: Mapped[str | None] = mapped_column(String(36), default=None)
    session_id: Mapped[str | None] = mapped_column(String(36), default=None)
    due_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(String(300), default=None)
    fired_at: Mapped[datetime | None] = mapped_column(default=None)
    fired_by: Mapped[str | None] = mapped_column(String(64), default=None)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    correlation_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """Of the request or event that planned the timer: its event carries it on."""
    causation_id: Mapped[str | None] = mapped_column(String(128), default=None)
    """The event that planned the timer, which becomes the causation of the event it emits."""
    traceparent: Mapped[str | None] = mapped_column(String(128), default=None)
    """W3C trace context of what planned the timer (tracing on): its firing links to it."""


class CoachingSessionRow(Base):
    __tablename__ = "coaching_sessions"
    __table_args__ = (Index("ix_coaching_sessions_goal", "goal_id", "starts_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(Integer)
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    location: Mapped[str | None] = mapped_column(String(500), default=None)
    link: Mapped[str | None] = mapped_column(String(2000), default=None)
    status: Mapped[str] = mapped_column(String(16))
    reminder_lead_minutes: Mapped[list[int]] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The iCalendar SEQUENCE: 0 when scheduled, one more at each reschedule and at cancelling."""


class CalendarFeed(Base):
    """One person's calendar feed: of one goal, or (``goal_id`` empty) of all their goals.

    The feed URL carries a signed token naming this row and its ``version``;
    rotating bumps the version (older URLs stop working), revoking sets
    ``revoked_at``. The token is signed with ``issued_at`` as its time, so the
    same row always gives the same URL until it is rotated.
    """

    __tablename__ = "calendar_feeds"
    __table_args__ = (
        Index("ux_calendar_feeds_owner", "tenant_id", "goal_id", "email", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(String(128))
    """The goal, or '' for the person's feed across all their goals of the tenant."""
    email: Mapped[str] = mapped_column(String(320))
    version: Mapped[int] = mapped_column(Integer, default=1)
    issued_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
