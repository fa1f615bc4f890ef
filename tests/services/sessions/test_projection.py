"""The goal projection and the schedule's reaction to goal events, through the real broker:
redelivery and reordering change nothing, pause sends nothing, resume does not back-fire,
a policy change re-plans only what is not yet due, completion cancels the rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from services.sessions.models import GoalProjection
from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.db.tables import processed_events
from shared.devstack.broker import TansuBroker
from shared.events import CloudEvent
from shared.events.catalog.goals import (
    GoalCompleted,
    GoalPaused,
    GoalResumed,
    GoalUpdated,
)
from tests.services.sessions.support import (
    Sessions,
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    wait_for,
    weekly,
)

START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # Sunday
POLICY = weekly(["MO", "TH"], reminder_lead_minutes=[60, 1440], grace_minutes=120)


async def _processed(app: Sessions, events: list[CloudEvent]) -> bool:
    async with app.database.reader() as session:
        done = set(
            (
                await session.execute(
                    select(processed_events.c.event_id).where(
                        processed_events.c.event_id.in_([e.id for e in events])
                    )
                )
            ).scalars()
        )
    return done == {e.id for e in events}


async def _projection(app: Sessions, goal_id: str) -> GoalProjection:
    async with app.database.reader() as session:
        row = await session.scalar(select(GoalProjection).where(GoalProjection.goal_id == goal_id))
    assert row is not None
    return row


async def test_newer_version_wins_and_redelivery_changes_nothing(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    topic = f"{topic_prefix}goals"
    v1 = goal_event(snapshot(goal_id, policy=POLICY, at=START), at=START)
    v3 = goal_event(
        snapshot(goal_id, version=3, status="paused", policy=POLICY, at=START),
        cls=GoalPaused,
        at=START,
    )
    v2 = goal_event(
        snapshot(goal_id, version=2, policy=weekly(["FR"]), at=START), cls=GoalUpdated, at=START
    )
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        # v3 arrives before v2, and v1 is delivered twice.
        await publish(broker.bootstrap_servers, topic, [v1, v3, v2, v1])
        await wait_for(lambda: _processed(app, [v1, v2, v3]), what="all processed")
        row = await _projection(app, goal_id)
        assert (row.version, row.status, row.schedule_state) == (3, "paused", "paused")
        assert row.snapshot["policy"]["cadence"]["weekdays"] == ["MO", "TH"], "v2 was ignored"
        assert [o for o in await app.occurrences(goal_id) if o.status == "open"] == []
        assert [t for t in await app.timers(goal_id) if t.fired_at is None] == []

        # Paused for three weeks: nothing is sent, and resuming does not back-fire.
        paused_until = START + timedelta(days=21, hours=3)  # Sunday 22 March, 15:00 UTC
        await app.step_to(paused_until)
        assert await app.outbox_events() == []
        v4 = goal_event(
            snapshot(goal_id, version=4, policy=POLICY, at=paused_until),
            cls=GoalResumed,
            at=paused_until,
        )
        await publish(broker.bootstrap_servers, topic, [v4])
        await app.wait_projected(goal_id, 4)
        (current,) = [o for o in await app.occurrences(goal_id) if o.status == "open"]
        assert current.due_at == datetime(2026, 3, 23, 8, tzinfo=UTC)  # next Monday, 09:00 CET
        assert current.sequence == 1
        pending = [t for t in await app.timers(goal_id) if t.fired_at is None]
        # The 24 h reminder (Sunday 08:00 UTC) was already past when resumed: not planned.
        assert [(t.kind, t.level) for t in pending] == [
            ("checkin.due_soon", 60),
            ("checkin.missed", 0),
        ]
        await app.scheduler.wait_caught_up(paused_until)
        assert await app.outbox_events() == []


async def test_policy_change_replans_only_the_future_and_completion_cancels(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    topic = f"{topic_prefix}goals"
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            topic,
            [goal_event(snapshot(goal_id, policy=POLICY, at=START), at=START)],
        )
        await app.wait_projected(goal_id)
        (first,) = await app.occurrences(goal_id)
        assert first.due_at == datetime(2026, 3, 2, 8, tzinfo=UTC)

        # In the grace period of Monday's check-in the policy moves to 18:00: Monday's
        # occurrence keeps its deadline; the next one follows the new time (the same
        # Monday at 18:00 is still ahead, so it is the next occurrence).
        in_grace = datetime(2026, 3, 2, 9, tzinfo=UTC)
        await app.step_to(in_grace)
        changed = weekly(["MO", "TH"], at="18:00", reminder_lead_minutes=[60], grace_minutes=60)
        await publish(
            broker.bootstrap_servers,
            topic,
            [
                goal_event(
                    snapshot(goal_id, version=2, policy=changed, at=in_grace),
                    cls=GoalUpdated,
                    at=in_grace,
                )
            ],
        )
        await app.wait_projected(goal_id, 2)
        (still_open,) = await app.occurrences(goal_id)
        assert (still_open.id, still_open.deadline_at) == (first.id, first.deadline_at)

        await app.step_to(first.deadline_at)
        occurrences = await app.occurrences(goal_id)
        assert [(o.status, o.local_due) for o in occurrences] == [
            ("missed", "2026-03-02T09:00:00"),
            ("open", "2026-03-02T18:00:00"),
        ]
        upcoming = occurrences[1]
        assert upcoming.grace_minutes == 60

        # Monday 18:00 is missed too; a change while Thursday's occurrence is still
        # ahead re-plans it.
        before_thursday = datetime(2026, 3, 4, 12, tzinfo=UTC)
        await app.step_to(before_thursday)
        later = weekly(["TH"], at="20:00", reminder_lead_minutes=[30])
        await publish(
            broker.bootstrap_servers,
            topic,
            [
                goal_event(
                    snapshot(goal_id, version=3, policy=later, at=before_thursday),
                    cls=GoalUpdated,
                    at=before_thursday,
                )
            ],
        )
        await app.wait_projected(goal_id, 3)
        occurrences = await app.occurrences(goal_id)
        assert [(o.status, o.local_due, o.sequence) for o in occurrences] == [
            ("missed", "2026-03-02T09:00:00", 1),
            ("missed", "2026-03-02T18:00:00", 2),
            ("open", "2026-03-05T20:00:00", 3),
        ]
        pending = [(t.kind, t.level) for t in await app.timers(goal_id) if t.fired_at is None]
        assert pending == [("checkin.due_soon", 30), ("checkin.missed", 0)]

        # Completion cancels everything that was still to come.
        await publish(
            broker.bootstrap_servers,
            topic,
            [
                goal_event(
                    snapshot(goal_id, version=4, status="completed", policy=later, at=START),
                    cls=GoalCompleted,
                    at=before_thursday,
                )
            ],
        )
        await app.wait_projected(goal_id, 4)
        assert (await _projection(app, goal_id)).schedule_state == "ended"
        assert [o.status for o in await app.occurrences(goal_id)] == ["missed", "missed"]
        assert [t for t in await app.timers(goal_id) if t.fired_at is None] == []
        sent_before = len(await app.outbox_events())
        await app.step_to(datetime(2026, 3, 20, tzinfo=UTC))
        assert len(await app.outbox_events()) == sent_before
