"""Participants index, milestone refs and overdue timer, progress, event history, ingestion dedupe.

Revision ID: goals_0002
Revises: goals_0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import BigIntPk, UtcDateTime

revision: str = "goals_0002"
down_revision: str | Sequence[str] | None = "goals_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OVERDUE_WHERE = "status = 'pending' AND overdue_fired_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("goals") as batch:
        batch.add_column(sa.Column("progress_percent", sa.Integer(), nullable=True))
    with op.batch_alter_table("milestones") as batch:
        batch.add_column(sa.Column("external_ref", sa.String(128), nullable=True))
        batch.add_column(sa.Column("overdue_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("overdue_fired_at", UtcDateTime, nullable=True))
        batch.create_unique_constraint(
            "uq_milestones_goal_id_external_ref", ["goal_id", "external_ref"]
        )
    op.create_index(
        "ix_milestones_overdue_due",
        "milestones",
        ["overdue_at"],
        sqlite_where=sa.text(_OVERDUE_WHERE),
        postgresql_where=sa.text(_OVERDUE_WHERE),
    )
    op.create_table(
        "goal_participants",
        sa.Column("goal_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goals.id"], name="fk_goal_participants_goal_id_goals", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("goal_id", "position", name="pk_goal_participants"),
    )
    op.create_index(
        "ix_goal_participants_tenant_email", "goal_participants", ["tenant_id", "email", "role"]
    )
    op.create_table(
        "progress_reports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(36), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reported_at", UtcDateTime, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goals.id"], name="fk_progress_reports_goal_id_goals", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_progress_reports"),
    )
    op.create_index("ix_progress_reports_goal", "progress_reports", ["goal_id", "reported_at"])
    op.create_table(
        "goal_events",
        sa.Column("seq", BigIntPk, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("time", UtcDateTime, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_goal_events_event_id"),
    )
    op.create_index("ix_goal_events_goal", "goal_events", ["tenant_id", "goal_id", "seq"])
    op.create_table(
        "ingested_events",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(36), nullable=True),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "source", "event_id", name="pk_ingested_events"),
    )


def downgrade() -> None:
    op.drop_table("ingested_events")
    op.drop_index("ix_goal_events_goal", table_name="goal_events")
    op.drop_table("goal_events")
    op.drop_index("ix_progress_reports_goal", table_name="progress_reports")
    op.drop_table("progress_reports")
    op.drop_index("ix_goal_participants_tenant_email", table_name="goal_participants")
    op.drop_table("goal_participants")
    op.drop_index("ix_milestones_overdue_due", table_name="milestones")
    with op.batch_alter_table("milestones") as batch:
        batch.drop_constraint("uq_milestones_goal_id_external_ref", type_="unique")
        batch.drop_column("overdue_fired_at")
        batch.drop_column("overdue_at")
        batch.drop_column("external_ref")
    with op.batch_alter_table("goals") as batch:
        batch.drop_column("progress_percent")
