"""Pure rules: quiet hours across midnight and DST, digest slots, filters, recipients."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.notifications.email.digest import latest_slot
from services.notifications.email.rules import QuietHours, candidates, roles_for
from services.notifications.webhooks.matching import (
    payload_filter_errors,
    payload_matches,
    type_matches,
)
from services.notifications.webhooks.sender import parse_retry_after
from tests.services.notifications import factories

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 3, 10, 23, 30), datetime(2026, 3, 11, 7, 0)),  # before midnight
        (datetime(2026, 3, 11, 3, 0), datetime(2026, 3, 11, 7, 0)),  # after midnight
        (datetime(2026, 3, 11, 12, 0), None),  # outside
        (datetime(2026, 3, 29, 1, 0), datetime(2026, 3, 29, 7, 0)),  # the night clocks go forward
    ],
)
def test_quiet_hours_release_in_the_recipients_zone(
    local: datetime, expected: datetime | None
) -> None:
    quiet = QuietHours.parse("22:00", "07:00")
    assert quiet is not None
    instant = local.replace(tzinfo=BERLIN).astimezone(UTC)
    release = quiet.release_time(instant, "Europe/Berlin")
    if expected is None:
        assert release is None
    else:
        assert release is not None
        assert release.astimezone(BERLIN).replace(tzinfo=None) == expected


def test_latest_slot_is_the_last_weekly_hour_in_the_zone() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
    slot = latest_slot(now, "Europe/Berlin", "MO", 8)
    assert slot.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 11, 23, 8, 0)
    same_day_later = latest_slot(now, "UTC", "WE", 13)
    assert same_day_later == datetime(2026, 11, 18, 13, 0, tzinfo=UTC)


def test_type_and_payload_filters() -> None:
    assert type_matches([], "checkin.missed")
    assert type_matches(["checkin.*"], "checkin.missed")
    assert not type_matches(["milestone.*", "goal.completed"], "checkin.missed")
    data = {"goal": {"category": "health", "title": "Run"}, "risk": {"level": "high"}}
    assert payload_matches({"goal.category": "health"}, data)
    assert payload_matches({"goal.category": {"$in": ["career", "health"]}}, data)
    assert payload_matches({"risk.level": {"$ne": "low"}, "goal.x": {"$exists": False}}, data)
    assert not payload_matches({"goal.category": {"$nin": ["health"]}}, data)
    assert not payload_matches({"goal.missing": "x"}, data)
    assert payload_filter_errors({"a": {"$regex": "x"}, "b..c": 1, "d": {"$in": "x"}}) == [
        "'a': unknown operator '$regex'",
        "'b..c': a path is dotted field names, e.g. goal.category",
        "'d': $in takes a list of at most 100 values",
    ]


def test_recipients_are_unique_by_address_and_escalations_add_their_roles() -> None:
    twice = factories.Participant(role="coach", name="Grace", email="GRACE@example.com")
    goal = factories.goal_ref(participants=[factories.MENTEE, factories.MENTOR, twice])
    event = factories.checkin_missed(goal)
    assert [r.email for r in candidates(event)] == ["ada@example.com", "grace@example.com"]
    assert roles_for(event, {}) == ["mentee"]
    assert roles_for(event, {"checkin.missed": []}) == []


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Wed, 25 Nov 2026 12:01:00 GMT", now) == 60
    assert parse_retry_after("soon", now) is None
