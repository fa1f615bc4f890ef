"""Occurrences of a check-in policy: wall-clock times in the mentee's zone, resolved to UTC.

A policy says "Monday at 09:00 in Europe/Berlin", so occurrences are generated
as *nominal* local wall-clock times first and only then turned into instants;
that is what keeps 09:00 at 09:00 across both DST changes.

The DST rule, for a nominal time the zone does not have exactly once:

* **nonexistent** (the clocks skip it in spring): the time moves forward by
  the length of the gap, e.g. 02:30 in Europe/Berlin on the spring change
  becomes 03:30 CEST, and 02:15 on Lord Howe's 30-minute change becomes 02:45;
* **ambiguous** (it happens twice in autumn): the first, earlier occurrence
  is taken.

Both are what PEP 495's ``fold=0`` means, so the rule is also what Python
itself does; every decision taken is described in words so the event's
``reasoning.dst_decision`` can say what happened.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from shared.events.catalog.policy import (
    WEEKDAYS,
    CheckinPolicy,
    DailyCadence,
    EveryNDaysCadence,
    QuietHours,
    RRuleCadence,
    WeeklyCadence,
)

_RRULE_SCAN_LIMIT = 20_000
"""Candidates an RRULE may produce in one search before it is treated as exhausted."""


@dataclass(frozen=True, slots=True)
class PlannedTime:
    """One occurrence: what the policy asked for, when that is, and what it is on the wall."""

    nominal: datetime
    """Naive local wall-clock time the policy produces."""
    due_at: datetime
    """Aware UTC instant."""
    local: datetime
    """Naive local wall-clock time of ``due_at`` (differs from ``nominal`` in a DST gap)."""
    dst_decision: str | None = None


def zone_of(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def format_local(moment: datetime) -> str:
    """ISO 8601 without offset, to the minute or second as needed."""
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def resolve_local(nominal: datetime, zone: ZoneInfo) -> PlannedTime:
    """Turn a naive local wall-clock time into an instant by the documented DST rule."""
    nominal = nominal.replace(tzinfo=None, fold=0)
    first = nominal.replace(tzinfo=zone, fold=0)
    due_at = first.astimezone(UTC)
    second_offset = nominal.replace(tzinfo=zone, fold=1).utcoffset()
    if first.utcoffset() == second_offset:
        return PlannedTime(nominal, due_at, nominal)
    actual = due_at.astimezone(zone).replace(tzinfo=None)
    if actual != nominal:
        gap = actual - nominal
        decision = (
            f"{nominal:%H:%M} does not exist on {nominal:%Y-%m-%d} in {zone.key} "
            f"(clocks skip forward {_duration(gap)}); moved forward by the gap to {actual:%H:%M}"
        )
        return PlannedTime(nominal, due_at, actual, decision)
    later = nominal.replace(tzinfo=zone, fold=1).astimezone(UTC)
    decision = (
        f"{nominal:%H:%M} occurs twice on {nominal:%Y-%m-%d} in {zone.key} (clocks fall back); "
        f"took the first occurrence ({_offset(first)}), not the second at "
        f"{later:%H:%M} UTC"
    )
    return PlannedTime(nominal, due_at, nominal, decision)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def describe_rule(policy: CheckinPolicy) -> str:
    """The cadence in words an operator can check against the policy."""
    at = policy.time_of_day.strftime("%H:%M")
    cadence = policy.cadence
    if isinstance(cadence, DailyCadence):
        return f"daily at {at}"
    if isinstance(cadence, WeeklyCadence):
        days = ",".join(day for day in WEEKDAYS if day in cadence.weekdays)
        return f"weekly {days} at {at}"
    if isinstance(cadence, EveryNDaysCadence):
        start = f" from {policy.starts_on.isoformat()}" if policy.starts_on else ""
        return f"every {cadence.every_days} days at {at}{start}"
    return f"RRULE {cadence.rrule} from {at}"


def nominal_times(
    policy: CheckinPolicy,
    anchor: date,
    after: datetime,
    *,
    previous: datetime | None = None,
) -> Iterator[datetime]:
    """Nominal local times of the policy strictly after ``after`` (naive local), in order.

    ``anchor`` is the schedule's first day (day 0 of "every N days", DTSTART of
    an RRULE). ``previous``, when given, is a nominal time the policy produced
    before; RRULEs without COUNT restart from it instead of from the anchor so
    a long-running hourly rule does not re-walk years of history each time.
    """
    after = after.replace(tzinfo=None)
    cadence = policy.cadence
    at = policy.time_of_day
    if isinstance(cadence, RRuleCadence):
        yield from _rrule_times(cadence.rrule, policy.timezone, anchor, at, after, previous)
        return
    start = max(anchor, after.date())
    if isinstance(cadence, EveryNDaysCadence):
        step = cadence.every_days
        k = max(0, math.ceil((start - anchor).days / step))
        day = anchor + timedelta(days=k * step)
        while True:
            moment = datetime.combine(day, at)
            if moment > after:
                yield moment
            day += timedelta(days=step)
    wanted = None
    if isinstance(cadence, WeeklyCadence):
        wanted = {WEEKDAYS.index(day) for day in cadence.weekdays}
    day = start
    while True:
        if wanted is None or day.weekday() in wanted:
            moment = datetime.combine(day, at)
            if moment > after:
                yield moment
        day += timedelta(days=1)


def _rrule_times(
    text: str,
    zone_name: str,
    anchor: date,
    at: time,
    after: datetime,
    previous: datetime | None,
) -> Iterator[datetime]:
    zone = ZoneInfo(zone_name)
    start = datetime.combine(anchor, at)
    if previous is not None and previous >= start and "COUNT=" not in text.upper():
        start = previous
    # An aware DTSTART lets UNTIL (always UTC, see check_rrule) compare correctly;
    # results are stripped back to nominal wall-clock times.
    try:
        rule = rrulestr(f"RRULE:{text}", dtstart=start.replace(tzinfo=zone), cache=False)
    except ValueError:
        # dateutil refuses a rule that can never fire from this DTSTART (e.g. every 48 h
        # at midnight from a 09:00 start): no occurrence, not a failure on every event.
        return
    assert isinstance(rule, rrule)
    for scanned, moment in enumerate(rule, start=1):
        if scanned > _RRULE_SCAN_LIMIT:
            return
        nominal = moment.replace(tzinfo=None)
        if nominal > after:
            yield nominal


def first_due_after(policy: CheckinPolicy, anchor: date, instant: datetime) -> PlannedTime | None:
    """The first occurrence whose due instant is strictly after ``instant``."""
    zone = ZoneInfo(policy.timezone)
    local_now = instant.astimezone(zone).replace(tzinfo=None)
    # Start a day early: a nominal time before the local "now" can still be
    # later as an instant when a DST gap moves it forward.
    return _first_after(policy, anchor, local_now - timedelta(days=1), instant, None, zone)


def next_after(policy: CheckinPolicy, anchor: date, previous: PlannedTime) -> PlannedTime | None:
    """The occurrence after ``previous`` (strictly later in time, never a duplicate)."""
    zone = ZoneInfo(policy.timezone)
    return _first_after(policy, anchor, previous.nominal, previous.due_at, previous.nominal, zone)


def _first_after(
    policy: CheckinPolicy,
    anchor: date,
    after_local: datetime,
    after_instant: datetime,
    previous_nominal: datetime | None,
    zone: ZoneInfo,
) -> PlannedTime | None:
    for nominal in nominal_times(policy, anchor, after_local, previous=previous_nominal):
        planned = resolve_local(nominal, zone)
        # Two nominal times can land on one instant (02:30 and 03:30 on a
        # spring-forward day): the later one is not a second occurrence.
        if planned.due_at > after_instant:
            return planned
    return None


def occurrences_between(
    policy: CheckinPolicy, anchor: date, start: datetime, end: datetime, *, limit: int = 1000
) -> list[PlannedTime]:
    """Occurrences due in (start, end], at most ``limit`` of them (the forecast and tests)."""
    found: list[PlannedTime] = []
    current = first_due_after(policy, anchor, start)
    while current is not None and current.due_at <= end and len(found) < limit:
        found.append(current)
        current = next_after(policy, anchor, current)
    return found


@dataclass(frozen=True, slots=True)
class QuietShift:
    at: datetime
    """Aware UTC instant the reminder fires after the shift."""
    note: str | None
    """Why it moved, or None when it did not."""


def outside_quiet_hours(instant: datetime, quiet: QuietHours | None, zone_name: str) -> QuietShift:
    """A reminder at ``instant`` that falls in quiet hours moves to the moment they end."""
    if quiet is None:
        return QuietShift(instant, None)
    zone = ZoneInfo(zone_name)
    local = instant.astimezone(zone).replace(tzinfo=None)
    if not quiet.contains(local.time()):
        return QuietShift(instant, None)
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += timedelta(days=1)
    end = resolve_local(datetime.combine(end_day, quiet.end), zone)
    note = (
        f"{local:%H:%M} local is within quiet hours {quiet.start:%H:%M}-{quiet.end:%H:%M}; "
        f"moved to {end.local:%Y-%m-%d %H:%M}"
    )
    return QuietShift(end.due_at, note)
