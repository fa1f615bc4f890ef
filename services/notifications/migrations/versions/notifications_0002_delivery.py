"""Complete delivery: endpoint filters, limits, headers, rotation and failure tracking; routing;
email rules, templates, preferences, unsubscribes, digest entries and goal quiet hours.

Revision ID: notifications_0002
Revises: notifications_0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import BigIntPk, JsonType, UtcDateTime

revision: str = "notifications_0002"
down_revision: str | Sequence[str] | None = "notifications_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(128), type_=sa.Text(), comment="encrypted at rest"
        )
        batch.add_column(sa.Column("payload_filter", JsonType, nullable=True))
        batch.add_column(sa.Column("rate_limit_per_second", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("headers", JsonType, nullable=False, server_default=sa.text("'{}'"))
        )
        batch.add_column(sa.Column("previous_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("previous_secret_expires_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("failing_since", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("disabled_reason", sa.String(32), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="event"))
        batch.add_column(sa.Column("routing", JsonType, nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("recipient", JsonType, nullable=True))
        batch.add_column(sa.Column("replay_of", sa.String(36), nullable=True))
        batch.create_index("ix_deliveries_endpoint", ["endpoint_id", "created_at"])
    op.create_table(
        "email_rules",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("roles", JsonType, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_type", name="pk_email_rules"),
    )
    op.create_table(
        "email_templates",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_type", name="pk_email_templates"),
    )
    op.create_table(
        "preferences",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("digest_day", sa.String(2), nullable=True),
        sa.Column("digest_hour", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("last_digest_at", UtcDateTime, nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "email", name="pk_preferences"),
    )
    op.create_index("ix_preferences_delivery", "preferences", ["delivery"])
    op.create_table(
        "unsubscribes",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "email", "event_type", name="pk_unsubscribes"),
    )
    op.create_table(
        "digest_entries",
        sa.Column("id", BigIntPk, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("recipient_name", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("goal_title", sa.String(200), nullable=False),
        sa.Column("mentee_name", sa.String(200), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=True),
        sa.Column("streak", sa.Integer(), nullable=True),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("digest_id", sa.String(128), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_digest_entries"),
    )
    op.create_index(
        "ix_digest_entries_pending", "digest_entries", ["tenant_id", "email", "digest_id"]
    )
    op.create_table(
        "goal_quiet_hours",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("goal_id", sa.String(128), nullable=False),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "goal_id", name="pk_goal_quiet_hours"),
    )


def downgrade() -> None:
    op.drop_table("goal_quiet_hours")
    op.drop_index("ix_digest_entries_pending", table_name="digest_entries")
    op.drop_table("digest_entries")
    op.drop_table("unsubscribes")
    op.drop_index("ix_preferences_delivery", table_name="preferences")
    op.drop_table("preferences")
    op.drop_table("email_templates")
    op.drop_table("email_rules")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_endpoint")
        batch.drop_column("replay_of")
        batch.drop_column("recipient")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("routing")
        batch.drop_column("kind")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("disabled_reason")
        batch.drop_column("failing_since")
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret")
        batch.drop_column("headers")
        batch.drop_column("rate_limit_per_second")
        batch.drop_column("payload_filter")
        batch.alter_column("secret", existing_type=sa.Text(), type_=sa.String(128))
