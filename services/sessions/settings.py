"""Configuration of the sessions service (environment prefix ``SESSIONS_``).

Every rule the schedule applies that is not part of a goal's own policy (the
check-in window, how long an escalation waits for an acknowledgement, how far
a snooze may push a deadline) is a setting, documented in docs/sessions.md.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SessionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SESSIONS_")
    service_name: ClassVar[str] = "sessions"

    port: int = Field(default=8002, ge=1, le=65535)
    public_base_url: str = Field(
        default="http://127.0.0.1:8002",
        description="Where people reach this service from outside (signed links point here).",
    )
    consumer_group: str = "sessions"

    # Schedule rules
    checkin_window_minutes: int = Field(
        default=720,
        ge=1,
        le=10_080,
        description="A check-in counts for an occurrence from this long before its due time.",
    )
    checkin_future_skew_seconds: int = Field(
        default=300, ge=0, le=3600, description="How far in the future occurred_at may lie."
    )
    escalation_delay_minutes: int = Field(
        default=60,
        ge=0,
        le=10_080,
        description="How long after a miss an escalation waits, so an acknowledgement can stop it.",
    )
    snooze_max_minutes: int = Field(default=1440, ge=1, le=10_080)
    snooze_default_minutes: int = Field(default=60, ge=1, le=10_080)

    # Calendar feeds
    calendar_horizon_days: int = Field(
        default=90, ge=1, le=366, description="How far ahead a feed lists check-ins."
    )
    calendar_history_days: int = Field(
        default=30, ge=0, le=366, description="How far back a feed keeps check-ins and sessions."
    )
    calendar_token_days: int = Field(
        default=365, ge=1, le=3650, description="A feed URL's token expires this long after issue."
    )

    # Scheduler
    scheduler_enabled: bool = True
    scheduler_batch_size: int = Field(default=500, ge=1, le=10_000)
    scheduler_poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="Longest idle wait; other replicas' plans show then."
    )
    scheduler_late_after_seconds: float = Field(
        default=60.0, ge=0, description="A timer fired later than this after its time is 'late'."
    )
    timer_retention_days: float = Field(
        default=30.0, gt=0, description="Fired timers are kept this long (they stop re-planning)."
    )

    @model_validator(mode="after")
    def _snooze_bounds(self) -> Self:
        if self.snooze_default_minutes > self.snooze_max_minutes:
            raise ValueError("snooze_default_minutes must not exceed snooze_max_minutes")
        return self
