"""The check-in policy: how often a mentee commits to check in, and what happens on a miss.

It travels inside goal events, so goals validates it on the way in and
sessions plans from exactly what was validated. The RRULE guard lives here
for the same reason: no consumer should ever have to plan a rule that fires
every second or a billion times.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, Self

from dateutil.rrule import HOURLY, rrulestr
from pydantic import AfterValidator, Field, model_validator

from shared.events.catalog.common import Role, TimeZoneName
from shared.events.envelope import EventData

Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
WEEKDAYS: tuple[Weekday, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

RRULE_MAX_LENGTH = 500
RRULE_MAX_COUNT = 10_000
RRULE_MIN_GAP = timedelta(hours=1)
_RRULE_PROBE = 200


def check_rrule(value: str) -> str:
    """Reject RRULEs that are malformed, fire more often than hourly, or never fire again.

    Only the rule itself is accepted (no DTSTART line): the policy's start date,
    time of day and zone anchor it, so a rule cannot smuggle in its own anchor.
    """
    text = value.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or "\n" in text or "DTSTART" in text.upper():
        raise ValueError("give one RRULE value such as FREQ=WEEKLY;BYDAY=MO")
    parts = dict(part.split("=", 1) for part in text.upper().split(";") if "=" in part)
    if parts.get("FREQ") in {"SECONDLY", "MINUTELY"}:
        raise ValueError("RRULE fires more often than hourly")
    if "COUNT" in parts and (not parts["COUNT"].isdigit() or int(parts["COUNT"]) > RRULE_MAX_COUNT):
        raise ValueError(f"RRULE COUNT must be at most {RRULE_MAX_COUNT}")
    anchor = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        rule = rrulestr(f"RRULE:{text}", dtstart=anchor, forceset=False, cache=False)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"invalid RRULE: {error}") from None
    if getattr(rule, "_freq", HOURLY) < HOURLY:
        raise ValueError("RRULE fires more often than hourly")
    if getattr(rule, "_until", None) is not None and rule._until < datetime.now(UTC):  # type: ignore[union-attr]
        raise ValueError("RRULE UNTIL is in the past")
    previous: datetime | None = None
    fired = 0
    for occurrence in rule:
        if occurrence.year > anchor.year + 10:
            break
        if previous is not None and occurrence - previous < RRULE_MIN_GAP:
            raise ValueError("RRULE fires more often than hourly")
        previous = occurrence
        fired += 1
        if fired >= _RRULE_PROBE:
            break
    if fired == 0:
        raise ValueError("RRULE never fires")
    return text


class DailyCadence(EventData):
    kind: Literal["daily"] = "daily"


class WeeklyCadence(EventData):
    kind: Literal["weekly"] = "weekly"
    weekdays: list[Weekday] = Field(min_length=1, max_length=7, examples=[["MO", "TH"]])

    @model_validator(mode="after")
    def _unique_days(self) -> Self:
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("weekdays must not repeat")
        return self


class EveryNDaysCadence(EventData):
    kind: Literal["every_n_days"] = "every_n_days"
    every_days: int = Field(ge=1, le=366)


class RRuleCadence(EventData):
    kind: Literal["rrule"] = "rrule"
    rrule: Annotated[
        str, Field(min_length=1, max_length=RRULE_MAX_LENGTH), AfterValidator(check_rrule)
    ] = Field(examples=["FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"])


Cadence = Annotated[
    DailyCadence | WeeklyCadence | EveryNDaysCadence | RRuleCadence,
    Field(discriminator="kind"),
]


class QuietHours(EventData):
    """Local hours in which reminders wait; may wrap midnight (22:00 to 07:00)."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class EscalationStep(EventData):
    """After this many consecutive misses, tell these roles."""

    after_misses: int = Field(ge=1, le=100)
    notify_roles: list[Role] = Field(min_length=1, max_length=5)


class CheckinPolicy(EventData):
    cadence: Cadence
    time_of_day: time = Field(default=time(9, 0), examples=["09:00"])
    timezone: TimeZoneName
    starts_on: date | None = None
    reminder_lead_minutes: list[Annotated[int, Field(ge=1, le=10_080)]] = Field(
        default_factory=lambda: [60], max_length=5
    )
    grace_minutes: int = Field(default=120, ge=0, le=10_080)
    quiet_hours: QuietHours | None = None
    escalation: list[EscalationStep] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.reminder_lead_minutes)) != len(self.reminder_lead_minutes):
            raise ValueError("reminder_lead_minutes must not repeat")
        misses = [step.after_misses for step in self.escalation]
        if misses != sorted(set(misses)):
            raise ValueError("escalation steps must have strictly increasing after_misses")
        if self.time_of_day.tzinfo is not None:
            raise ValueError("time_of_day is a local time; give the zone in timezone")
        return self
