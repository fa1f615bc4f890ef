"""Configuration of the command line (environment prefix ``FOLLOWTHROUGH_``).

The CLI reads the deployment's common settings (the key set that signs
credentials, the broker and topic prefix the control topic lives behind) and
its own: where each service answers and which credential to call it with.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

ServiceName = Literal["goals", "sessions", "notifications"]
SERVICES: tuple[ServiceName, ...] = ("goals", "sessions", "notifications")


class CliSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FOLLOWTHROUGH_")
    service_name: ClassVar[str] = "cli"

    goals_url: str = Field(
        default="http://127.0.0.1:8001",
        description="The goals API; several replicas comma-separated (status reads each).",
    )
    sessions_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    token: SecretStr | None = Field(default=None, description="The credential to call with.")
    tenant: str | None = Field(
        default=None,
        description="Without a token: mint a short-lived credential for this tenant "
        "(needs the private key set).",
    )
    http_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    def urls(self, service: ServiceName) -> list[str]:
        """Every replica URL given for a service (the first one answers API calls)."""
        raw: str = getattr(self, f"{service}_url")
        return [url.strip().rstrip("/") for url in raw.split(",") if url.strip()]

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> Self:
        """Overrides the services' check: the CLI holds none of their secrets, only keys."""
        return self
