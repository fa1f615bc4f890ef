"""Occurrence generation: properties over random policies in zones with awkward DST, plus the
documented DST decisions on known transition days."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sessions import recurrence
from shared.events.catalog.policy import WEEKDAYS, CheckinPolicy

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]

cadences = st.one_of(
    st.just({"kind": "daily"}),
    st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True).map(
        lambda days: {"kind": "weekly", "weekdays": days}
    ),
    st.integers(min_value=1, max_value=10).map(lambda n: {"kind": "every_n_days", "every_days": n}),
    st.sampled_from(
        [
            {"kind": "rrule", "rrule": "FREQ=DAILY"},
            {"kind": "rrule", "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU"},
            {"kind": "rrule", "rrule": "FREQ=MONTHLY;BYMONTHDAY=1,15"},
        ]
    ),
)
# Quarter hours, weighted towards the hours DST changes happen in (00:00 to 03:00 local).
times_of_day = st.one_of(
    st.builds(time, st.integers(0, 3), st.sampled_from([0, 15, 30, 45])),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
)
starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 1))


def policy_of(cadence: dict[str, object], at: time, zone: str) -> CheckinPolicy:
    return CheckinPolicy.model_validate({"cadence": cadence, "time_of_day": at, "timezone": zone})


def chain(policy: CheckinPolicy, anchor: date, count: int) -> list[recurrence.PlannedTime]:
    """``count`` occurrences the way the planner walks them: first after a moment, then next."""
    start = datetime.combine(anchor, time(0), tzinfo=UTC) - timedelta(days=1)
    current = recurrence.first_due_after(policy, anchor, start)
    found: list[recurrence.PlannedTime] = []
    while current is not None and len(found) < count:
        found.append(current)
        current = recurrence.next_after(policy, anchor, current)
    return found


@settings(max_examples=150, deadline=None)
@given(cadence=cadences, at=times_of_day, zone=st.sampled_from(ZONES), anchor=starts)
def test_occurrences_are_increasing_local_and_resolved_by_the_dst_rule(
    cadence: dict[str, object], at: time, zone: str, anchor: date
) -> None:
    policy = policy_of(cadence, at, zone)
    tz = ZoneInfo(zone)
    found = chain(policy, anchor, 60)
    assert len(found) == 60
    instants = [planned.due_at for planned in found]
    assert instants == sorted(instants)
    assert len(set(instants)) == len(instants), "no instant twice"
    assert all(b > a for a, b in itertools.pairwise(instants)), "strictly increasing"
    for planned in found:
        assert planned.due_at.tzinfo is not None
        assert planned.nominal.time() == at, "the policy's local time"
        assert planned.nominal.date() >= anchor
        # What the wall clock shows at the instant:
        assert planned.due_at.astimezone(tz).replace(tzinfo=None) == planned.local
        # The rule: the earlier reading of the nominal time (fold=0), which moves a
        # nonexistent time forward by the gap and takes the first of an ambiguous one.
        assert planned.due_at == planned.nominal.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if planned.local != planned.nominal:
            assert planned.local > planned.nominal
            assert planned.dst_decision is not None
            assert "moved forward" in planned.dst_decision
        ambiguous = (
            planned.nominal.replace(tzinfo=tz, fold=0).utcoffset()
            != planned.nominal.replace(tzinfo=tz, fold=1).utcoffset()
        )
        assert (planned.dst_decision is not None) == ambiguous
    _assert_cadence(policy, anchor, [planned.nominal for planned in found])


def _assert_cadence(policy: CheckinPolicy, anchor: date, nominals: list[datetime]) -> None:
    days = [moment.date() for moment in nominals]
    cadence = policy.cadence.kind
    if cadence == "daily":
        assert all((b - a).days == 1 for a, b in itertools.pairwise(days))
    elif cadence == "weekly":
        wanted = {WEEKDAYS.index(day) for day in policy.cadence.weekdays}  # type: ignore[union-attr]
        assert {day.weekday() for day in days} <= wanted
        # Every wanted weekday in the span is there: nothing skipped.
        span = (days[-1] - days[0]).days + 1
        expected = sum(1 for k in range(span) if (days[0] + timedelta(days=k)).weekday() in wanted)
        assert len(days) == expected
    elif cadence == "every_n_days":
        step = policy.cadence.every_days  # type: ignore[union-attr]
        assert all((day - anchor).days % step == 0 for day in days)
        assert all((b - a).days == step for a, b in itertools.pairwise(days))


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), anchor=starts, hours_later=st.integers(0, 24 * 400))
def test_first_due_after_never_returns_the_past_and_skips_nothing(
    zone: str, anchor: date, hours_later: int
) -> None:
    policy = policy_of({"kind": "daily"}, time(2, 30), zone)
    everything = chain(policy, anchor, 420)
    moment = datetime.combine(anchor, time(0), tzinfo=UTC) + timedelta(hours=hours_later)
    first = recurrence.first_due_after(policy, anchor, moment)
    assert first is not None
    assert first.due_at > moment
    assert first == next(planned for planned in everything if planned.due_at > moment)


def test_weekly_monday_nine_in_berlin_stays_nine_across_both_changes() -> None:
    policy = policy_of({"kind": "weekly", "weekdays": ["MO"]}, time(9), "Europe/Berlin")
    found = recurrence.occurrences_between(
        policy,
        date(2026, 3, 1),
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 11, 10, tzinfo=UTC),
    )
    assert all(planned.local.time() == time(9) for planned in found)
    assert all(planned.local.weekday() == 0 for planned in found)
    by_day = {planned.local.date(): planned.due_at for planned in found}
    assert by_day[date(2026, 3, 23)] == datetime(2026, 3, 23, 8, tzinfo=UTC)  # CET
    assert by_day[date(2026, 3, 30)] == datetime(2026, 3, 30, 7, tzinfo=UTC)  # CEST
    assert by_day[date(2026, 10, 19)] == datetime(2026, 10, 19, 7, tzinfo=UTC)  # CEST
    assert by_day[date(2026, 10, 26)] == datetime(2026, 10, 26, 8, tzinfo=UTC)  # CET
    assert all(planned.dst_decision is None for planned in found)


@pytest.mark.parametrize(
    ("zone", "nominal", "local", "utc", "words"),
    [
        # Spring forward: the nominal time does not exist, it moves forward by the gap.
        ("Europe/Berlin", datetime(2026, 3, 29, 2, 30), datetime(2026, 3, 29, 3, 30),
         datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "moved forward by the gap"),
        ("America/New_York", datetime(2026, 3, 8, 2, 15), datetime(2026, 3, 8, 3, 15),
         datetime(2026, 3, 8, 7, 15, tzinfo=UTC), "moved forward by the gap"),
        # Lord Howe skips only 30 minutes (02:00 to 02:30).
        ("Australia/Lord_Howe", datetime(2026, 10, 4, 2, 15), datetime(2026, 10, 4, 2, 45),
         datetime(2026, 10, 3, 15, 45, tzinfo=UTC), "30 min"),
        # Fall back: the time happens twice, the first (earlier) one is taken.
        ("Europe/Berlin", datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 2, 30),
         datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "took the first occurrence"),
        ("America/New_York", datetime(2026, 11, 1, 1, 30), datetime(2026, 11, 1, 1, 30),
         datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "took the first occurrence"),
        ("Australia/Lord_Howe", datetime(2026, 4, 5, 1, 45), datetime(2026, 4, 5, 1, 45),
         datetime(2026, 4, 4, 14, 45, tzinfo=UTC), "took the first occurrence"),
        # Kolkata has no DST at all.
        ("Asia/Kolkata", datetime(2026, 3, 29, 2, 30), datetime(2026, 3, 29, 2, 30),
         datetime(2026, 3, 28, 21, 0, tzinfo=UTC), None),
    ],
)  # fmt: skip
def test_documented_dst_decisions(
    zone: str, nominal: datetime, local: datetime, utc: datetime, words: str | None
) -> None:
    planned = recurrence.resolve_local(nominal, ZoneInfo(zone))
    assert planned.local == local
    assert planned.due_at == utc
    if words is None:
        assert planned.dst_decision is None
    else:
        assert planned.dst_decision is not None
        assert words in planned.dst_decision


def test_quiet_hours_move_a_reminder_to_their_end_in_local_time() -> None:
    policy = CheckinPolicy.model_validate(
        {
            "cadence": {"kind": "daily"},
            "time_of_day": "07:30",
            "timezone": "Europe/Berlin",
            "quiet_hours": {"start": "22:00", "end": "07:00"},
        }
    )
    # 23:30 local (21:30 UTC in winter) is quiet: moves to 07:00 local next day.
    shifted = recurrence.outside_quiet_hours(
        datetime(2026, 1, 5, 22, 30, tzinfo=UTC), policy.quiet_hours, policy.timezone
    )
    assert shifted.at == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    assert shifted.note is not None
    assert "quiet hours 22:00-07:00" in shifted.note
    # 06:30 local is quiet too: moves to 07:00 the same day.
    early = recurrence.outside_quiet_hours(
        datetime(2026, 1, 6, 5, 30, tzinfo=UTC), policy.quiet_hours, policy.timezone
    )
    assert early.at == datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    # 12:00 local is not quiet.
    noon = datetime(2026, 1, 6, 11, 0, tzinfo=UTC)
    assert recurrence.outside_quiet_hours(noon, policy.quiet_hours, policy.timezone).at == noon
