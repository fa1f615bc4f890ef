"""What a timer emits continues the chain that planned it: the correlation id of the request (or
ingested event) behind the goal, and as causation the event that planned the timer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from tests.services.sessions.support import (
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    wait_for,
    weekly,
)

START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # Sunday; Monday 09:00 Berlin is 08:00 UTC
AFTER_FIRST_MISS = datetime(2026, 3, 2, 11, tzinfo=UTC)
AFTER_SECOND_REMINDER = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)


async def test_timer_events_carry_the_correlation_and_causation_of_what_planned_them(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    settings: SessionsSettings = settings_for(SessionsSettings)
    goal_id = new_goal_id()
    policy = weekly(["MO"], reminder_lead_minutes=[60], grace_minutes=120)
    created = goal_event(snapshot(goal_id, policy=policy, at=START), at=START)
    async with running_sessions(settings, ManualClock(START), auth_headers()) as app:
        await publish(broker.bootstrap_servers, f"{topic_prefix}goals", [created])
        await app.wait_projected(goal_id)
        planned = await wait_for(lambda: app.timers(goal_id), what="timers planned")
        assert {(t.correlation_id, t.causation_id) for t in planned} == {
            (created.correlationid, created.id)
        }

        await app.step_to(AFTER_FIRST_MISS)
        reminder, missed = await app.outbox_events()
        assert (reminder.type, missed.type) == ("checkin.due_soon", "checkin.missed")
        for event in (reminder, missed):
            assert (event.correlationid, event.causationid) == (created.correlationid, created.id)
        # The miss planned next week's timers: same correlation, the miss as their cause.
        upcoming = [t for t in await app.timers(goal_id) if t.fired_at is None]
        assert upcoming
        assert {(t.correlation_id, t.causation_id) for t in upcoming} == {
            (created.correlationid, missed.id)
        }

        await app.step_to(AFTER_SECOND_REMINDER)
        *_, second_reminder = await app.outbox_events()
        assert second_reminder.type == "checkin.due_soon"
        assert second_reminder.subject != reminder.subject  # next week's occurrence
        assert (second_reminder.correlationid, second_reminder.causationid) == (
            created.correlationid,
            missed.id,
        )
