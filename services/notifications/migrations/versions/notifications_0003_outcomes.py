"""An index on (tenant, last change) of deliveries, for the outcomes-per-hour chart.

Revision ID: notifications_0003
Revises: notifications_0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "notifications_0003"
down_revision: str | Sequence[str] | None = "notifications_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_deliveries_tenant_updated", "deliveries", ["tenant_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_tenant_updated", table_name="deliveries")
