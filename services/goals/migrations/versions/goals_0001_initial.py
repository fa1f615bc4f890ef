"""Goals and milestones.

Revision ID: goals_0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import JsonType, UtcDateTime

revision: str = "goals_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("goals",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "goals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("external_ref", sa.String(128), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(64), nullable=True),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("participants", JsonType, nullable=False),
        sa.Column("policy", JsonType, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_goals"),
        sa.UniqueConstraint("tenant_id", "external_ref", name="uq_goals_tenant_id_external_ref"),
    )
    op.create_index("ix_goals_tenant_updated", "goals", ["tenant_id", "updated_at", "id"])
    op.create_table(
        "milestones",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.Column("evidence_note", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goals.id"], name="fk_milestones_goal_id_goals", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_milestones"),
    )
    op.create_index("ix_milestones_goal", "milestones", ["goal_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_milestones_goal", table_name="milestones")
    op.drop_table("milestones")
    op.drop_index("ix_goals_tenant_updated", table_name="goals")
    op.drop_table("goals")
