"""Goal projection.

Revision ID: sessions_0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import JsonType, UtcDateTime

revision: str = "sessions_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sessions",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "goal_projections",
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("snapshot", JsonType, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("goal_id", name="pk_goal_projections"),
    )


def downgrade() -> None:
    op.drop_table("goal_projections")
