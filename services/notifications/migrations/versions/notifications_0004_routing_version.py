"""A routing version, bumped with every change to endpoints or email rules.

Each process caches what routing needs (a tenant's endpoints and email
rules) and reads this one row per batch to know whether its copy is current,
across replicas too.

Revision ID: notifications_0004
Revises: notifications_0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notifications_0004"
down_revision: str | Sequence[str] | None = "notifications_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "routing_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("routing_version")
