"""Platform table: the Kafka cluster each outbox relay last published to.

Revision ID: platform_0004
Revises: platform_0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "platform_0004"
down_revision: str | Sequence[str] | None = "platform_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_clusters",
        sa.Column("relay", sa.String(100), nullable=False),
        sa.Column("cluster_id", sa.String(255), nullable=False),
        sa.Column("seen_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("relay", name="pk_broker_clusters"),
    )


def downgrade() -> None:
    op.drop_table("broker_clusters")
