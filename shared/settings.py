"""Settings shared by every service, read once at start by pydantic-settings.

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``GOALS_``, ``SESSIONS_``, ``NOTIFICATIONS_``). Settings every service needs
alike (the broker, the signing keys) may also be given once as
``FOLLOWTHROUGH_<NAME>``; the service's own prefix wins where both are set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

Environment = Literal["development", "test", "production"]
COMMON_PREFIX = "FOLLOWTHROUGH_"


class ServiceSettings(BaseSettings):
    """Everything a Followthrough service process is configured with."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )
    service_name: ClassVar[str] = "service"

    environment: Environment = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console", "auto"] = "auto"
    http_keep_alive_seconds: int = Field(default=75, ge=1, le=3600)
    """How long an idle client connection stays open. Longer than the idle expiry of
    clients' pools (httpx and uvicorn both default to 5 s, so a client reusing a
    connection after 5 s raced the server's close and got a ReadError) and of load
    balancers in front (60 s on the common ones), so the client is always the side
    that closes an idle connection."""
    gc_tuning: bool = True
    """Freeze the heap once the app has started and collect young objects less often
    (``shared.http.server``); off only to measure what it saves."""
    data_dir: Path = Path(".data")
    database_url: str = ""
    database_pool_size: int = Field(default=10, ge=1, le=200)
    run_migrations: bool = True

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = ""
    kafka_enable_idempotence: bool = False
    kafka_create_topics: bool = True
    kafka_topic_partitions: int = Field(default=6, ge=1, le=1000)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    kafka_heartbeat_interval_ms: int = Field(default=1_000, ge=100, le=60_000)
    kafka_fetch_max_wait_ms: int = Field(default=10, ge=1, le=10_000)
    """How long a fetch may wait on the broker when nothing is there. Apache Kafka answers a
    waiting fetch as soon as a record arrives, so this only sets the idle poll rate there;
    Tansu answers when the wait is over, so on it this is the consumer's added latency
    (at 100 ms it was half the end-to-end p50 at 20 events/s: 49 ms, against 24 ms at 10 and
    19 ms at 5, where idle fetches start to cost the broker and consumers CPU)."""
    kafka_topic_retention_hours: float = Field(default=168, gt=0, le=24 * 365)
    """``retention.ms`` of the topics a service creates (deploy/ and docker-compose.yml set the
    same): how long a broker keeps an event, so how long a copy naming an erased person lasts."""
    kafka_dlq_retention_hours: float = Field(default=672, gt=0, le=24 * 365)
    """``retention.ms`` of the dead-letter topics (four weeks in deploy/)."""
    kafka_cluster_check_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often each process asks which cluster the broker is (shared/kafka/cluster.py)."""
    consumer_max_batch: int = Field(default=200, ge=1, le=10_000)
    consumer_handler_retries: int = Field(default=3, ge=0, le=100)
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_retention_hours: float = Field(default=72, gt=0)
    outbox_replay_hours: float = Field(default=24, ge=0)
    """Published rows this recent are published again when the broker turns out to be a new
    cluster (a memory-only broker restarted empty); kept at least this long, so <= retention."""

    retention_enabled: bool = True
    retention_purge_seconds: float = Field(default=60.0, gt=0, le=86_400)
    """How often the retention purger looks for rows past their window."""
    retention_batch_size: int = Field(default=500, ge=1, le=100_000)
    """Rows deleted per transaction: small, so no write lock is held for long."""
    retention_floors: bool = True
    """Off only for soak tests and benchmarks: lets windows go below each kind's floor."""
    retention_seconds: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description='The deployment\'s default window per kind, e.g. {"attempts": 604800}; '
        "kinds not named keep the documented default (docs/privacy.md).",
    )

    auth_issuer: str = "followthrough"
    auth_audience: str = "followthrough-api"
    auth_jwks: SecretStr | None = None
    auth_keys_file: Path | None = None
    auth_leeway_seconds: int = Field(default=30, ge=0, le=600)

    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    tenant_rate_limit_per_second: float | None = Field(
        default=5000.0,
        gt=0,
        le=1_000_000,
        description="Ingestion per tenant and process: units (a batched event, a goal written, "
        "a check-in) a second; unset turns the limit off.",
    )
    tenant_rate_limit_burst_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="How many seconds of the rate a tenant may save up."
    )
    tenant_rate_limits: dict[str, Annotated[float, Field(gt=0, le=1_000_000)]] = Field(
        default_factory=dict, description='Per-tenant rates, e.g. {"acme": 50}.'
    )
    link_signing_secret: SecretStr = SecretStr("development-link-secret-change-me")
    privacy_key: SecretStr = SecretStr("development-privacy-key-change-me")
    """Keys the person hash erasure events and suppression entries carry; the same in every
    service (set it once as FOLLOWTHROUGH_PRIVACY_KEY) and never changed, or erased people
    would no longer be recognised."""
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where people reach this service from outside (used in signed links).",
    )

    @classmethod
    def env_prefix(cls) -> str:
        prefix = cls.model_config.get("env_prefix", "")
        return str(prefix)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_file = cls.model_config.get("env_file")
        common_env = EnvSettingsSource(settings_cls, env_prefix=COMMON_PREFIX)
        common_dotenv = DotEnvSettingsSource(
            settings_cls, env_file=env_file, env_prefix=COMMON_PREFIX
        )
        return (
            init_settings,
            env_settings,
            common_env,
            dotenv_settings,
            common_dotenv,
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _derive_defaults(self) -> Self:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / self.service_name}.db"
        return self

    @model_validator(mode="after")
    def _replay_within_retention(self) -> Self:
        if self.outbox_replay_hours > self.outbox_retention_hours:
            cls = type(self)
            raise ValueError(
                f"{setting_variable(cls, 'outbox_replay_hours')} ({self.outbox_replay_hours:g}) "
                f"must not exceed {setting_variable(cls, 'outbox_retention_hours')} "
                f"({self.outbox_retention_hours:g}): a row purged cannot be re-published"
            )
        return self

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> Self:
        """Outside development, every secret must be set explicitly and keys must be given."""
        if self.environment != "production":
            return self
        cls = type(self)
        for name, field in cls.model_fields.items():
            if field.annotation is SecretStr and getattr(self, name) == field.default:
                raise ValueError(
                    f"{setting_variable(cls, name)} must be set explicitly in production"
                )
        if self.auth_jwks is None and self.auth_keys_file is None:
            jwks, keys_file = (
                setting_variable(cls, "auth_jwks"),
                setting_variable(cls, "auth_keys_file"),
            )
            raise ValueError(f"{jwks} or {keys_file} must be set in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def topic(self, name: str) -> str:
        """The full Kafka topic name for a logical topic, with this deployment's prefix."""
        return f"{self.kafka_topic_prefix}{name}"

    def group(self, name: str) -> str:
        """The consumer group id, namespaced like the topics so deployments sharing a
        cluster (or tests sharing a broker) never join each other's groups."""
        return f"{self.kafka_topic_prefix}{name}"

    def resolved_keys_file(self) -> Path:
        return self.auth_keys_file or self.data_dir / "keys" / "jwks.json"


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def setting_variable(cls: type[ServiceSettings], field: str) -> str:
    """The environment variable a field was read from: the service's own, else the common one."""
    own = f"{cls.env_prefix()}{field}".upper()
    common = f"{COMMON_PREFIX}{field}".upper()
    present = {name.upper() for name in os.environ}
    return common if common in present and own not in present else own


def describe_settings_error(cls: type[ServiceSettings], error: ValidationError) -> str:
    """A message naming the environment variable behind every invalid setting."""
    lines = [f"invalid configuration for the {cls.service_name} service:"]
    for item in error.errors(include_url=False):
        loc = item.get("loc") or ()
        field = str(loc[0]) if loc else ""
        variable = setting_variable(cls, field) if field else f"({cls.env_prefix()}* settings)"
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"  {variable}: {message}")
    return "\n".join(lines)


def load_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build settings or stop the process with a message naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        print(describe_settings_error(cls, error), file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
