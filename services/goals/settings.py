"""Configuration of the goals service (environment prefix ``GOALS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class GoalsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GOALS_")
    service_name: ClassVar[str] = "goals"

    port: int = Field(default=8001, ge=1, le=65535)
    overdue_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often the overdue timer looks for milestones whose due date passed.",
    )
    overdue_batch_size: int = Field(default=100, ge=1, le=10_000)
    sessions_url: str = Field(
        default="http://127.0.0.1:8002",
        description="Where goals reaches sessions for a person's export (GET /v1/people/export).",
    )
    notifications_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Where goals reaches notifications for a person's export.",
    )
    export_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
