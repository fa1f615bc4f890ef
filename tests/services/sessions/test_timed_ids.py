"""Timed event ids are name-based UUIDs (RFC 4122 version 5), stable across releases.

A timer's id is its event's id and its row's primary key: an id computed
differently after an upgrade would plan every pending moment a second time
and hand notifications a new event to deliver. So the ids are pinned to what
the standard library's ``uuid.uuid5`` gives for the same name.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.sessions.events import NAMESPACE, occurrence_id, timed_event_id

STANDARD_NAMESPACE = uuid.UUID(str(NAMESPACE))


@given(
    goal_id=st.text(min_size=1, max_size=80),
    due_at=st.datetimes(timezones=st.just(UTC)),
    kind=st.sampled_from(["checkin.due_soon", "checkin.missed", "checkin.escalated"]),
    level=st.integers(min_value=0, max_value=10_000),
)
def test_an_id_is_the_standard_name_based_uuid_of_goal_moment_kind_and_level(
    goal_id: str, due_at: datetime, kind: str, level: int
) -> None:
    name = f"{goal_id}|{due_at.isoformat(timespec='seconds')}|{kind}|{level}"
    made = timed_event_id(goal_id, due_at, kind, level)
    assert made == str(uuid.uuid5(STANDARD_NAMESPACE, name))
    assert uuid.UUID(made).version == 5


def test_the_same_instant_in_any_zone_gives_the_same_id() -> None:
    instant = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    elsewhere = instant.astimezone(timezone(timedelta(hours=13, minutes=45)))
    assert timed_event_id("g-1", instant, "checkin.missed", 0) == timed_event_id(
        "g-1", elsewhere, "checkin.missed", 0
    )
    assert occurrence_id("g-1", instant) != occurrence_id("g-1", instant + timedelta(seconds=1))


def test_an_id_of_a_known_moment_never_changes() -> None:
    """One id as releases before this one stored it: a change in how ids are made shows here."""
    due = datetime(2026, 3, 5, 13, 50, tzinfo=UTC)
    assert timed_event_id("goal-42", due, "checkin.missed", 0) == (
        "4097373a-e7a0-589c-b5b4-8833c5486a98"
    )
