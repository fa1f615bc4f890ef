"""Configuration of the sessions service (environment prefix ``SESSIONS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SessionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SESSIONS_")
    service_name: ClassVar[str] = "sessions"

    port: int = Field(default=8002, ge=1, le=65535)
    consumer_group: str = "sessions"
