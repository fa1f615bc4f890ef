"""Configuration of the notifications service (environment prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")
    service_name: ClassVar[str] = "notifications"

    port: int = Field(default=8003, ge=1, le=65535)
    consumer_group: str = "notifications"

    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    webhook_allow_http: bool = False
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs webhooks may target despite the SSRF guard, e.g. 127.0.0.1/32.",
    )
    webhook_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]
    )
    dispatch_batch_size: int = Field(default=200, ge=1, le=5000)
    dispatch_concurrency: int = Field(default=64, ge=1, le=1000)
    dispatch_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    dispatch_lease_seconds: float = Field(default=60.0, gt=0)
