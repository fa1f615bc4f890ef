"""Configuration of the console (environment prefix ``CONSOLE_``).

The console keeps no database and reads no topic: the inherited database and
Kafka settings are unused. What it needs is where the three services answer,
the key set to check a pasted credential against (``AUTH_*``, usually given
once as ``FOLLOWTHROUGH_AUTH_*``) and the secret its session cookie is
encrypted with.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_")
    service_name: ClassVar[str] = "console"

    port: int = Field(default=8004, ge=1, le=65535)
    goals_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8001"), description="The goals service's base URL."
    )
    sessions_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8002"), description="The sessions service's base URL."
    )
    notifications_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8003"),
        description="The notifications service's base URL.",
    )
    session_secret: SecretStr = Field(
        default=SecretStr("development-console-session-secret-change-me"),
        description="Encrypts the session cookie (which holds the signed-in credential).",
    )
    session_hours: float = Field(
        default=8.0,
        gt=0,
        le=168,
        description="A sign-in lasts this long (or less, if the credential expires sooner).",
    )
    cookie_secure: bool = Field(
        default=False, description="Send cookies over HTTPS only; set it wherever TLS is used."
    )
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    page_size: int = Field(default=20, ge=5, le=200, description="Rows per page in lists.")

    def upstream_urls(self) -> dict[str, str]:
        return {
            "goals": str(self.goals_url).rstrip("/"),
            "sessions": str(self.sessions_url).rstrip("/"),
            "notifications": str(self.notifications_url).rstrip("/"),
        }
