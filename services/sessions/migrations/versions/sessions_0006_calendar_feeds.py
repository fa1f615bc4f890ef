"""Calendar feeds (one revocable, rotatable token per person and goal) and session SEQUENCE.

Revision ID: sessions_0006
Revises: sessions_0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "sessions_0006"
down_revision: str | Sequence[str] | None = "sessions_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_feeds"),
    )
    op.create_index(
        "ux_calendar_feeds_owner", "calendar_feeds", ["tenant_id", "goal_id", "email"], unique=True
    )
    with op.batch_alter_table("coaching_sessions") as batch:
        batch.add_column(
            sa.Column("sequence", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("coaching_sessions") as batch:
        batch.drop_column("sequence")
    op.drop_index("ux_calendar_feeds_owner", table_name="calendar_feeds")
    op.drop_table("calendar_feeds")
