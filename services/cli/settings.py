"""Configuration of the command line (environment prefix ``FOLLOWTHROUGH_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CliSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FOLLOWTHROUGH_")
    service_name: ClassVar[str] = "cli"
