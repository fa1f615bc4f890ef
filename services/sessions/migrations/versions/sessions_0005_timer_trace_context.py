"""Timers remember the W3C trace context that planned them: the firing links to it.

Revision ID: sessions_0005
Revises: sessions_0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sessions_0005"
down_revision: str | Sequence[str] | None = "sessions_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("traceparent")
