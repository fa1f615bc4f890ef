"""Configuration of the notifications service (environment prefix ``NOTIFICATIONS_``).

Every number in the delivery contract (timeouts, the retry schedule, how long
an endpoint may fail before it is disabled, the rotation overlap) is a
setting, so an operator can tune it and tests can shrink it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

WEEKDAY_NAMES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")
    service_name: ClassVar[str] = "notifications"

    port: int = Field(default=8003, ge=1, le=65535)
    public_base_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Where recipients reach this service (unsubscribe links point here).",
    )
    sessions_public_url: str = Field(
        default="http://127.0.0.1:8002",
        description="Where recipients reach the sessions service (check-in/ack/snooze links).",
    )
    consumer_group: str = "notifications"

    # Webhooks
    webhook_timeout_seconds: float = Field(
        default=15.0, gt=0, le=120, description="Total deadline of one attempt, body included."
    )
    webhook_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=0, le=10 * 1024 * 1024)
    webhook_ca_file: Path | None = Field(
        default=None, description="Extra CA bundle trusted for https endpoints (private CAs)."
    )
    webhook_allow_http: bool = False
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs webhooks may target despite the SSRF guard, e.g. 127.0.0.1/32.",
    )
    webhook_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
        max_length=50,
        description="Delay before each attempt; its length is the number of attempts.",
    )
    webhook_retry_jitter: float = Field(
        default=0.1, ge=0, le=0.5, description="Each delay is scaled by 1 +/- this fraction."
    )
    webhook_retry_after_max_seconds: float = Field(default=86_400.0, ge=0)
    webhook_disable_after_hours: float = Field(
        default=120.0, gt=0, description="An endpoint failing continuously this long is disabled."
    )
    webhook_secret_overlap_hours: float = Field(
        default=24.0, ge=0, description="How long the previous secret keeps signing after rotation."
    )
    webhook_endpoint_concurrency: int = Field(
        default=16, ge=1, le=100, description="Attempts in flight per endpoint (per replica)."
    )
    webhook_default_rate_per_second: float | None = Field(default=None, gt=0, le=10_000)
    secrets_key: SecretStr = SecretStr("development-notifications-secrets-key")

    # Delivery worker
    dispatch_batch_size: int = Field(default=200, ge=1, le=5000)
    dispatch_max_in_flight: int = Field(
        default=1000, ge=1, le=100_000, description="A memory bound only; lanes do the isolation."
    )
    dispatch_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    dispatch_lease_seconds: float = Field(default=120.0, gt=0)
    dispatch_stats_seconds: float = Field(default=15.0, gt=0)

    # Email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_security: Literal["plain", "starttls", "tls"] = "plain"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_validate_certs: bool = True
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    smtp_pool_size: int = Field(default=4, ge=1, le=100)
    email_from: str = "Followthrough <notifications@followthrough.local>"
    email_message_id_domain: str = "followthrough.local"
    email_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
        max_length=50,
    )
    unsubscribe_link_days: int = Field(default=90, ge=1, le=3650)
    action_link_days: int = Field(default=14, ge=1, le=365)

    # Weekly digest
    digest_day: Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"] = "MO"
    digest_hour: int = Field(default=8, ge=0, le=23)
    digest_poll_seconds: float = Field(default=60.0, gt=0)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not a network: {item!r}") from None
        return value

    @field_validator("webhook_retry_schedule_seconds", "email_retry_schedule_seconds")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays must not be negative")
        return value

    @model_validator(mode="after")
    def _smtp_auth(self) -> Self:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together")
        return self
