"""Platform table: dead letters, the operator's record of what a consumer could not process.

Revision ID: platform_0002
Revises: platform_0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import JsonType, UtcDateTime

revision: str = "platform_0002"
down_revision: str | Sequence[str] | None = "platform_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("consumer_group", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("event_type", sa.String(100), nullable=True),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("record_key", sa.LargeBinary(), nullable=True),
        sa.Column("record_value", sa.LargeBinary(), nullable=False),
        sa.Column("record_headers", JsonType, nullable=False),
        sa.Column("dead_lettered_at", UtcDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("redriven_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint(
            "consumer_group",
            "topic",
            "source_partition",
            "source_offset",
            name="uq_dead_letters_source",
        ),
    )
    op.create_index(
        "ix_dead_letters_tenant_id_dead_lettered_at",
        "dead_letters",
        ["tenant_id", "dead_lettered_at"],
    )
    op.create_index("ix_dead_letters_dead_lettered_at", "dead_letters", ["dead_lettered_at"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_dead_lettered_at", table_name="dead_letters")
    op.drop_index("ix_dead_letters_tenant_id_dead_lettered_at", table_name="dead_letters")
    op.drop_table("dead_letters")
