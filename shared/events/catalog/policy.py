"""The check-in policy: how often a mentee commits to check in, and what happens on a miss.

It travels inside goal events, so goals validates it on the way in and
sessions plans from exactly what was validated. The RRULE guard lives here
for the same reason: no consumer should ever have to plan a rule that fires
every second or a billion times.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Literal, Self

from dateutil.rrule import HOURLY, rrulestr
from pydantic import AfterValidator, Field, field_validator, model_validator

from shared.events.catalog.common import LocalTime, Role, TimeZoneName
from shared.events.envelope import EventData

Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
WEEKDAYS: tuple[Weekday, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

RRULE_MAX_LENGTH = 500
RRULE_MAX_COUNT = 10_000
RRULE_MAX_INTERVAL = 1_000
RRULE_MIN_GAP = timedelta(hours=1)
_RRULE_PROBE = 200
_RRULE_HORIZON_YEARS = 30
_RRULE_PARTS = frozenset(
    {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH"}
    | {"BYHOUR", "BYMINUTE", "BYSECOND", "WKST"}
)
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NUMBERED_DAY = re.compile(r"^([+-]?\d{1,2})(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL_DATE = re.compile(r"^\d{8}$")


def check_rrule(value: str) -> str:
    """Reject RRULEs that are malformed, fire more often than hourly, or can never fire.

    Only the rule itself is accepted (no DTSTART line): the policy's start date,
    time of day and zone anchor it, so a rule cannot smuggle in its own anchor.
    The accepted parts are the ones check-in cadences need; BYSETPOS, BYYEARDAY
    and BYWEEKNO are refused because with them a rule can be impossible in a way
    only a search to the year 9999 finds, which would let one request burn
    seconds of CPU. Returns the canonical (upper-case, prefix-free) rule.
    """
    text = value.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    text = text.upper()
    if not text or "\n" in text or "\r" in text or "DTSTART" in text:
        raise ValueError("give one RRULE value such as FREQ=WEEKLY;BYDAY=MO")
    parts = _rrule_parts(text)
    _check_rrule_structure(parts)
    _rrule_until(parts)
    canonical = ";".join(f"{name}={value}" for name, value in parts.items())
    _probe_rrule(canonical)
    return canonical


def check_rrule_fires_from(rule: str, start: datetime) -> None:
    """Refuse a rule (already through :func:`check_rrule`) that never fires from ``start``.

    The probe in :func:`check_rrule` anchors every rule at one fixed instant, but
    whether a rule can fire at all may depend on its real anchor: every 48 hours
    at midnight fires from a midnight start and never from 09:00. Writers check
    the policy's own first day and time of day with this before accepting it.
    """
    try:
        first = rrulestr(f"RRULE:{rule}", dtstart=start, forceset=False, cache=False).after(
            start, inc=True
        )
    except (ValueError, TypeError, OverflowError):
        first = None
    if first is None:
        raise ValueError(
            f"the RRULE never fires from {start.date().isoformat()} at its "
            f"time_of_day {start.time().isoformat(timespec='minutes')}"
        )


def rrule_until(rule: str) -> datetime | None:
    """The UNTIL instant of a rule that passed :func:`check_rrule`, if it has one.

    Whether UNTIL lies in the past is the writer's check (goals refuses it on
    input), not the model's: an event must stay parseable after its rule ends.
    """
    return _rrule_until(_rrule_parts(rule.upper().removeprefix("RRULE:")))


def _rrule_parts(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise ValueError(f"invalid RRULE part {item!r}")
        if name not in _RRULE_PARTS:
            raise ValueError(f"RRULE part {name} is not supported")
        if name in parts:
            raise ValueError(f"RRULE part {name} is repeated")
        parts[name] = value
    if "FREQ" not in parts:
        raise ValueError("RRULE needs FREQ")
    if "UNTIL" in parts and _UNTIL_DATE.match(parts["UNTIL"]):
        parts["UNTIL"] = f"{parts['UNTIL']}T235959Z"
    return parts


def _int_list(parts: dict[str, str], name: str) -> list[int]:
    try:
        return [int(item) for item in parts[name].split(",")] if name in parts else []
    except ValueError:
        raise ValueError(f"RRULE {name} must be a list of integers") from None


def _check_rrule_structure(parts: dict[str, str]) -> None:
    if parts["FREQ"] in {"SECONDLY", "MINUTELY"}:
        raise ValueError("RRULE fires more often than hourly")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("RRULE may not have both COUNT and UNTIL")
    count = _int_list(parts, "COUNT")
    if count and not 1 <= count[0] <= RRULE_MAX_COUNT:
        raise ValueError(f"RRULE COUNT must be between 1 and {RRULE_MAX_COUNT}")
    interval = _int_list(parts, "INTERVAL")
    if interval and not 1 <= interval[0] <= RRULE_MAX_INTERVAL:
        raise ValueError(f"RRULE INTERVAL must be between 1 and {RRULE_MAX_INTERVAL}")
    months = _int_list(parts, "BYMONTH") or list(range(1, 13))
    if any(not 1 <= month <= 12 for month in months):
        raise ValueError("RRULE BYMONTH must be 1 to 12")
    month_days = _int_list(parts, "BYMONTHDAY")
    longest = max(_DAYS_IN_MONTH[month - 1] for month in months)
    if month_days and all(abs(day) > longest or day == 0 for day in month_days):
        raise ValueError("RRULE BYMONTHDAY never occurs in the given months")
    numbered = [
        match for day in parts.get("BYDAY", "").split(",") if (match := _NUMBERED_DAY.match(day))
    ]
    if numbered:
        if month_days:
            raise ValueError("RRULE may not combine numbered BYDAY (e.g. 2MO) with BYMONTHDAY")
        limit = 53 if parts["FREQ"] == "YEARLY" and "BYMONTH" not in parts else 5
        if any(not 1 <= abs(int(match.group(1))) <= limit for match in numbered):
            raise ValueError(f"RRULE numbered BYDAY must be between -{limit} and {limit}")


def _rrule_until(parts: dict[str, str]) -> datetime | None:
    if "UNTIL" not in parts:
        return None
    try:
        return datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            "RRULE UNTIL must be a date (20270131) or a UTC time (20270131T090000Z)"
        ) from None


@lru_cache(maxsize=1024)
def _probe_rrule(text: str) -> None:
    """Walk the rule's first occurrences from a fixed anchor: parseable, fires, never sub-hourly.

    Cached because the same few rules arrive again and again (every event that
    carries a policy is validated by each consumer), and the walk is the costly part.
    """
    anchor = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        rule = rrulestr(f"RRULE:{text}", dtstart=anchor, forceset=False, cache=False)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"invalid RRULE: {error}") from None
    if getattr(rule, "_freq", HOURLY) > HOURLY:  # dateutil: YEARLY=0 ... SECONDLY=6
        raise ValueError("RRULE fires more often than hourly")
    previous: datetime | None = None
    fired = 0
    for occurrence in rule:
        if occurrence.year > anchor.year + _RRULE_HORIZON_YEARS:
            break
        if previous is not None and occurrence - previous < RRULE_MIN_GAP:
            raise ValueError("RRULE fires more often than hourly")
        previous = occurrence
        fired += 1
        if fired >= _RRULE_PROBE:
            break
    if fired == 0:
        raise ValueError("RRULE never fires")


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

    start: LocalTime
    end: LocalTime

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

    @field_validator("notify_roles")
    @classmethod
    def _unique_roles(cls, roles: list[Role]) -> list[Role]:
        if len(set(roles)) != len(roles):
            raise ValueError("notify_roles must not repeat")
        return roles


class CheckinPolicy(EventData):
    """When check-ins are due and who hears about misses; always read in ``timezone``.

    New optional fields may be added; existing ones keep their meaning, since
    sessions plans schedules from exactly this model.
    """

    cadence: Cadence
    time_of_day: LocalTime = Field(default=time(9, 0))
    timezone: TimeZoneName
    starts_on: date | None = None
    reminder_lead_minutes: list[Annotated[int, Field(ge=1, le=10_080)]] = Field(
        default_factory=lambda: [60], max_length=5
    )
    grace_minutes: int = Field(default=120, ge=0, le=10_080)
    quiet_hours: QuietHours | None = None
    escalation: list[EscalationStep] = Field(default_factory=list, max_length=10)

    @field_validator("time_of_day")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("time_of_day is a local time; give the zone in timezone")
        return value

    @field_validator("reminder_lead_minutes")
    @classmethod
    def _unique_leads(cls, leads: list[int]) -> list[int]:
        if len(set(leads)) != len(leads):
            raise ValueError("reminder_lead_minutes must not repeat")
        return leads

    @field_validator("escalation")
    @classmethod
    def _increasing_ladder(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        misses = [step.after_misses for step in steps]
        if misses != sorted(set(misses)):
            raise ValueError("escalation steps must have strictly increasing after_misses")
        return steps

    @model_validator(mode="after")
    def _until_after_start(self) -> Self:
        if isinstance(self.cadence, RRuleCadence) and self.starts_on is not None:
            until = rrule_until(self.cadence.rrule)
            if until is not None and until.date() < self.starts_on:
                raise ValueError("the RRULE's UNTIL is before starts_on: it would never fire")
        return self
