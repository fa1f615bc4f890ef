"""Milestones remember the correlation and causation of their last event.

Revision ID: goals_0003
Revises: goals_0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "goals_0003"
down_revision: str | Sequence[str] | None = "goals_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("milestones") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("causation_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("milestones") as batch:
        batch.drop_column("causation_id")
        batch.drop_column("correlation_id")
