"""Platform table: an outbox row keeps the W3C trace context of the change that wrote it.

Revision ID: platform_0007
Revises: platform_0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "platform_0007"
down_revision: str | Sequence[str] | None = "platform_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("traceparent", sa.String(128), nullable=True))
    op.add_column("outbox", sa.Column("tracestate", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.drop_column("tracestate")
        table.drop_column("traceparent")
