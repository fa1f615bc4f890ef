"""An index on (tenant, goal status) for ranking a tenant's goals by risk.

Revision ID: sessions_0003
Revises: sessions_0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "sessions_0003"
down_revision: str | Sequence[str] | None = "sessions_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_goal_projections_tenant", "goal_projections", ["tenant_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_goal_projections_tenant", table_name="goal_projections")
