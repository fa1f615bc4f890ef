"""Schedules: schedule state on the goal projection, occurrences, check-ins, timers, sessions.

Revision ID: sessions_0002
Revises: sessions_0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import JsonType, UtcDateTime

revision: str = "sessions_0002"
down_revision: str | Sequence[str] | None = "sessions_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _projection_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("schedule_state", sa.String(16), nullable=False, server_default="none"),
        sa.Column("anchor_date", sa.Date(), nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("next_sequence", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("current_streak", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("longest_streak", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("consecutive_misses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_checkin_at", UtcDateTime, nullable=True),
        sa.Column("ratings", JsonType, nullable=False, server_default="[]"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("goal_projections") as batch:
        for column in _projection_columns():
            batch.add_column(column)

    op.create_table(
        "occurrences",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("due_at", UtcDateTime, nullable=False),
        sa.Column("nominal_local", sa.String(32), nullable=False),
        sa.Column("local_due", sa.String(32), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("opens_at", UtcDateTime, nullable=False),
        sa.Column("deadline_at", UtcDateTime, nullable=False),
        sa.Column("grace_minutes", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(600), nullable=False),
        sa.Column("dst_decision", sa.String(300), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("snoozed_minutes", sa.Integer(), nullable=False),
        sa.Column("checkin_id", sa.String(36), nullable=True),
        sa.Column("misses_in_row", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", UtcDateTime, nullable=True),
        sa.Column("acknowledged_by", sa.String(16), nullable=True),
        sa.Column("resolved_at", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_occurrences"),
    )
    op.create_index("ix_occurrences_goal_due", "occurrences", ["goal_id", "due_at"])
    op.create_index(
        "ix_occurrences_open",
        "occurrences",
        ["goal_id"],
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )

    op.create_table(
        "checkins",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("blockers", JsonType, nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("occurrence_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_checkins"),
    )
    op.create_index("ix_checkins_goal_occurred", "checkins", ["goal_id", "occurred_at"])

    op.create_table(
        "timers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.String(36), nullable=True),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("due_at", UtcDateTime, nullable=False),
        sa.Column("note", sa.String(300), nullable=True),
        sa.Column("fired_at", UtcDateTime, nullable=True),
        sa.Column("fired_by", sa.String(64), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
    )
    op.create_index(
        "ix_timers_due_unfired",
        "timers",
        ["due_at"],
        sqlite_where=sa.text("fired_at IS NULL"),
        postgresql_where=sa.text("fired_at IS NULL"),
    )
    op.create_index("ix_timers_goal", "timers", ["goal_id"])
    op.create_index("ix_timers_occurrence", "timers", ["occurrence_id"])
    op.create_index(
        "ix_timers_fired_at",
        "timers",
        ["fired_at"],
        sqlite_where=sa.text("fired_at IS NOT NULL"),
        postgresql_where=sa.text("fired_at IS NOT NULL"),
    )

    op.create_table(
        "coaching_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("starts_at", UtcDateTime, nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("participants", JsonType, nullable=False),
        sa.Column("location", sa.String(500), nullable=True),
        sa.Column("link", sa.String(2000), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reminder_lead_minutes", JsonType, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_coaching_sessions"),
    )
    op.create_index("ix_coaching_sessions_goal", "coaching_sessions", ["goal_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_coaching_sessions_goal", table_name="coaching_sessions")
    op.drop_table("coaching_sessions")
    op.drop_index("ix_timers_fired_at", table_name="timers")
    op.drop_index("ix_timers_occurrence", table_name="timers")
    op.drop_index("ix_timers_goal", table_name="timers")
    op.drop_index("ix_timers_due_unfired", table_name="timers")
    op.drop_table("timers")
    op.drop_index("ix_checkins_goal_occurred", table_name="checkins")
    op.drop_table("checkins")
    op.drop_index("ix_occurrences_open", table_name="occurrences")
    op.drop_index("ix_occurrences_goal_due", table_name="occurrences")
    op.drop_table("occurrences")
    with op.batch_alter_table("goal_projections") as batch:
        for column in reversed(_projection_columns()):
            batch.drop_column(column.name)
