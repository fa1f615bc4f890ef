"""A goal's quiet hours keep its status and last write, so a closed goal's row is purged.

Rows written before this have no status until their goal's next event, and
stay until then (one small row per goal, no personal data).

Revision ID: notifications_0007
Revises: notifications_0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "notifications_0007"
down_revision: str | Sequence[str] | None = "notifications_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("goal_quiet_hours") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("updated_at", UtcDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("goal_quiet_hours") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("status")
