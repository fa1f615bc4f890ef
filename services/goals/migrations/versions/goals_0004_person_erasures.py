"""Erasures of a person: the request and each service's confirmation.

Revision ID: goals_0004
Revises: goals_0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import JsonType, UtcDateTime

revision: str = "goals_0004"
down_revision: str | Sequence[str] | None = "goals_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parts", JsonType, nullable=False),
        sa.Column("goal_ids", JsonType, nullable=False),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.Column("broker_copies_expire_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index("ix_erasures_tenant_person", "erasures", ["tenant_id", "person_key"])


def downgrade() -> None:
    op.drop_index("ix_erasures_tenant_person", table_name="erasures")
    op.drop_table("erasures")
