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
