"""Platform table: each tenant's retention window per kind of record.

Revision ID: platform_0006
Revises: platform_0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "platform_0006"
down_revision: str | Sequence[str] | None = "platform_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_settings",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", name=op.f("pk_retention_settings")),
    )


def downgrade() -> None:
    op.drop_table("retention_settings")
