"""Tables every service database has: outbox, dedupe, idempotency keys, dead letters, revocations.

They live in their own metadata and their own Alembic branch (``platform``),
so each service's migrations create them once without copying their DDL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from shared.db.types import BigIntPk, JsonType, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """Metadata with the naming convention every service's tables use (stable migration names)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


platform_metadata = new_metadata()

outbox = Table(
    "outbox",
    platform_metadata,
    Column("id", BigIntPk, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("key", String(255), nullable=True),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", JsonType, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    # W3C trace context of the change that wrote the row (only while tracing is on): the
    # relay's publish span continues it and hands it on in the record's headers.
    Column("traceparent", String(128), nullable=True),
    Column("tracestate", String(512), nullable=True),
)
Index(
    "ix_outbox_unsent",
    outbox.c.id,
    sqlite_where=text("sent_at IS NULL"),
    postgresql_where=text("sent_at IS NULL"),
)
Index("ix_outbox_sent_at", outbox.c.sent_at)

processed_events = Table(
    "processed_events",
    platform_metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    platform_metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(10), nullable=False),
    Column("path", String(2000), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("response_headers", JsonType, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    # While the request runs its claim is renewed; past this, its process died.
    Column("claimed_until", UtcDateTime, nullable=True),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

dead_letters = Table(
    "dead_letters",
    platform_metadata,
    Column("id", String(36), primary_key=True),
    Column("consumer_group", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("error", Text, nullable=False),
    Column("event_id", String(128), nullable=True),
    Column("event_type", String(100), nullable=True),
    Column("tenant_id", String(64), nullable=True),
    Column("record_key", LargeBinary, nullable=True),
    Column("record_value", LargeBinary, nullable=False),
    Column("record_headers", JsonType, nullable=False),
    Column("dead_lettered_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("redriven_at", UtcDateTime, nullable=True),
    # A record dead-lettered again after a crash (before its offset was committed) is one row.
    UniqueConstraint(
        "consumer_group",
        "topic",
        "source_partition",
        "source_offset",
        name="uq_dead_letters_source",
    ),
)
Index(
    "ix_dead_letters_tenant_id_dead_lettered_at",
    dead_letters.c.tenant_id,
    dead_letters.c.dead_lettered_at,
)
Index("ix_dead_letters_dead_lettered_at", dead_letters.c.dead_lettered_at)

revoked_credentials = Table(
    "revoked_credentials",
    platform_metadata,
    Column("token_id", String(128), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=False),
    Column("reason", String(200), nullable=True),
)
Index("ix_revoked_credentials_expires_at", revoked_credentials.c.expires_at)

broker_clusters = Table(
    "broker_clusters",
    platform_metadata,
    # One row per outbox relay: the Kafka cluster it last published to, so a relay that
    # finds another cluster behind the same address knows to publish its recent rows again.
    Column("relay", String(100), primary_key=True),
    Column("cluster_id", String(255), nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
)

retention_settings = Table(
    "retention_settings",
    platform_metadata,
    # A tenant's own window for one kind of record (PUT /v1/retention); absent: the default.
    Column("tenant_id", String(64), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("seconds", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
