"""Platform table: revoked credentials, which every replica refuses.

Revision ID: platform_0003
Revises: platform_0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "platform_0003"
down_revision: str | Sequence[str] | None = "platform_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_credentials",
        sa.Column("token_id", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=True),
        sa.Column("revoked_at", UtcDateTime, nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_revoked_credentials"),
    )
    op.create_index("ix_revoked_credentials_expires_at", "revoked_credentials", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_credentials_expires_at", table_name="revoked_credentials")
    op.drop_table("revoked_credentials")
