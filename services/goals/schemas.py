"""Request models of the goals API (responses are in ``responses.py``).

Input models forbid unknown fields and strip surrounding whitespace, so a
typo in a field name is an error that names the field instead of a silently
ignored value. The check-in policy has strict input twins of the catalog
models: the catalog's own models tolerate fields added by newer producers,
which is right for events and wrong for requests.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from shared.events.catalog.common import Participant, Role, ShortText, TimeZoneName
from shared.events.catalog.policy import (
    CheckinPolicy,
    DailyCadence,
    EscalationStep,
    EveryNDaysCadence,
    QuietHours,
    RRuleCadence,
    WeeklyCadence,
    check_rrule_fires_from,
)

REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}$"
ExternalRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=REF_PATTERN,
        description="The integrator's own id: letters, digits and . _ : @ -, at most 128.",
        examples=["crm-goal-4711"],
    ),
]
SaneDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]
Note = Annotated[str, Field(max_length=2000)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


def contains_nul(value: Any) -> bool:
    """True if a NUL character hides anywhere in ``value`` (strings, keys, nested lists/dicts)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


class NulFree(BaseModel):
    """Refuses NUL characters in any field: PostgreSQL text cannot hold them, SQLite can,
    and an input must not be valid on one backend and a 500 on the other."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


class _Strict(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_STRICT_EVENT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ParticipantIn(_Strict):
    role: Role
    name: ShortText
    email: EmailStr = Field(max_length=320)
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA zone; required for the mentee."
    )

    def to_event(self) -> Participant:
        # Already validated against the same types (the e-mail check is the slow one).
        return Participant.model_construct(
            role=self.role, name=self.name, email=self.email, timezone=self.timezone
        )


class DailyCadenceIn(DailyCadence):
    model_config = _STRICT_EVENT


class WeeklyCadenceIn(WeeklyCadence):
    model_config = _STRICT_EVENT


class EveryNDaysCadenceIn(EveryNDaysCadence):
    model_config = _STRICT_EVENT


class RRuleCadenceIn(RRuleCadence):
    model_config = _STRICT_EVENT


class QuietHoursIn(QuietHours):
    model_config = _STRICT_EVENT


class EscalationStepIn(EscalationStep):
    model_config = _STRICT_EVENT


CadenceIn = Annotated[
    DailyCadenceIn | WeeklyCadenceIn | EveryNDaysCadenceIn | RRuleCadenceIn,
    Field(discriminator="kind"),
]


class CheckinPolicyIn(CheckinPolicy):
    """The check-in policy as a request gives it (see the catalog's CheckinPolicy)."""

    model_config = _STRICT_EVENT

    cadence: CadenceIn
    starts_on: SaneDate | None = None
    quiet_hours: QuietHoursIn | None = None
    escalation: list[EscalationStepIn] = Field(  # type: ignore[assignment]
        default_factory=list, max_length=10
    )

    @model_validator(mode="after")
    def _fires_at_its_time(self) -> Self:
        """An RRULE must be able to fire from this policy's own first day and time of day."""
        if isinstance(self.cadence, RRuleCadence):
            first_day = self.starts_on or date(2000, 1, 1)
            start = datetime.combine(first_day, self.time_of_day, tzinfo=UTC)
            check_rrule_fires_from(self.cadence.rrule, start)
        return self

    def to_event(self) -> CheckinPolicy:
        return CheckinPolicy.model_validate(self.model_dump())


POLICY_EXAMPLE: dict[str, Any] = {
    "cadence": {"kind": "weekly", "weekdays": ["MO", "TH"]},
    "time_of_day": "09:00",
    "timezone": "Europe/Berlin",
    "reminder_lead_minutes": [60],
    "grace_minutes": 120,
    "quiet_hours": {"start": "22:00", "end": "07:00"},
    "escalation": [
        {"after_misses": 1, "notify_roles": ["mentee"]},
        {"after_misses": 2, "notify_roles": ["mentor"]},
    ],
}
PARTICIPANTS_EXAMPLE: list[Any] = [
    {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "Europe/Berlin"},
    {"role": "mentor", "name": "Grace", "email": "grace@example.com"},
]


class MilestoneCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [{"title": "Run 10 km", "due_date": "2030-03-01", "external_ref": "ms-10k"}]
        },
    )

    title: ShortText = Field(examples=["Run 10 km without stopping"])
    due_date: SaneDate | None = Field(
        default=None, description="Overdue from the end of this day in the goal's zone."
    )
    external_ref: ExternalRef | None = None


class MilestonePatch(_Strict):
    """Merge patch: only the fields given change; ``null`` clears a nullable field."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"title": "Run 12 km", "due_date": "2030-04-01"}]},
    )

    title: ShortText | None = None
    due_date: SaneDate | None = None
    external_ref: ExternalRef | None = None


class MilestoneComplete(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"evidence_note": "Strava activity 123"}]},
    )

    evidence_note: Note | None = None


class MilestoneSkip(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"note": "Replaced by a trail run"}]},
    )

    note: Note | None = None


class LifecycleAction(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"reason": "Travelling for two weeks"}]},
    )

    reason: Reason | None = None


class ProgressCreate(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"percent": 40, "note": "Long run at 14 km"}]},
    )

    percent: int = Field(ge=0, le=100)
    note: Note | None = None


class _GoalBody(_Strict):
    title: ShortText
    description: str | None = Field(default=None, max_length=4000)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    target_date: SaneDate | None = None
    participants: list[ParticipantIn] = Field(
        min_length=1, max_length=50, description="Exactly one mentee (with a time zone)."
    )
    policy: CheckinPolicyIn | None = None
    milestones: list[MilestoneCreate] = Field(default_factory=list, max_length=200)


class GoalCreate(_GoalBody):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "external_ref": "crm-goal-4711",
                    "title": "Run a half marathon",
                    "category": "health",
                    "target_date": "2030-06-01",
                    "participants": PARTICIPANTS_EXAMPLE,
                    "policy": POLICY_EXAMPLE,
                    "milestones": [{"title": "Run 10 km", "due_date": "2030-03-01"}],
                }
            ]
        },
    )

    external_ref: ExternalRef | None = None
    status: Literal["draft", "active"] = "active"


class GoalUpsert(_GoalBody):
    """The whole goal for ``PUT /v1/goals/by-ref/{external_ref}``.

    ``status`` applies only when the PUT creates the goal; an existing goal's
    status changes only through the lifecycle actions. Milestones are matched
    by ``external_ref`` (else by title) and created when new; milestones not
    listed are kept.
    """

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "title": "Run a half marathon",
                    "participants": PARTICIPANTS_EXAMPLE,
                    "policy": POLICY_EXAMPLE,
                    "milestones": [{"title": "Run 10 km", "external_ref": "ms-10k"}],
                }
            ]
        },
    )

    status: Literal["draft", "active"] = "active"


class GoalPatch(_Strict):
    """Merge patch: only the fields given change; ``null`` clears a nullable field."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"title": "Run a full marathon", "target_date": "2031-04-20", "category": None}
            ]
        },
    )

    title: ShortText | None = None
    description: str | None = Field(default=None, max_length=4000)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    target_date: SaneDate | None = None
    external_ref: ExternalRef | None = None
    participants: list[ParticipantIn] | None = Field(default=None, min_length=1, max_length=50)
    policy: CheckinPolicyIn | None = None
