"""Suppressions of erased people (by keyed hash) and the messages an erasure rewrote.

Revision ID: notifications_0005
Revises: notifications_0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "notifications_0005"
down_revision: str | Sequence[str] | None = "notifications_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("erasure_id", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "person_key", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "erased_messages",
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("erasure_id", sa.String(128), nullable=True),
        sa.Column("erased_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_erased_messages")),
    )


def downgrade() -> None:
    op.drop_table("erased_messages")
    op.drop_table("suppressions")
