"""The scheduler at its limits: downtime catch-up, and two replicas competing on PostgreSQL.

Goals arrive as real goal.created events through the broker; each gets a weekly policy with
one reminder, so every goal has exactly two timers ahead (the reminder and the miss).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from services.sessions.models import GoalProjection, Timer
from services.sessions.settings import SessionsSettings
from services.sessions.timers.repository import NewTimer, TimerRepository
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.events.catalog.sessions import CheckinDueSoon, CheckinMissed
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
from tests.support.kafka import read_events

START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # Sunday; the first due time is Monday 08:00 UTC
PAST_EVERYTHING = datetime(2026, 3, 2, 11, tzinfo=UTC)  # after the misses at 10:00 UTC
POLICY = weekly(["MO"], reminder_lead_minutes=[60], grace_minutes=120)


async def _count(app: Sessions, query: Any) -> int:
    async with app.database.reader() as session:
        return int(await session.scalar(query) or 0)


async def _seed(app: Sessions, bootstrap: str, topic: str, goals: int) -> list[str]:
    ids = [new_goal_id() for _ in range(goals)]
    events = [goal_event(snapshot(goal_id, policy=POLICY, at=START), at=START) for goal_id in ids]
    await publish(bootstrap, topic, events)
    unfired = select(func.count()).select_from(Timer).where(Timer.fired_at.is_(None))
    projected = select(func.count()).select_from(GoalProjection)

    async def planned() -> bool:
        return await _count(app, projected) == goals and await _count(app, unfired) == 2 * goals

    await wait_for(planned, timeout=120, what=f"{goals} goals planned")
    return ids


async def test_after_downtime_every_due_timer_fires_once_marked_late(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    settings = settings_for(SessionsSettings)
    clock = ManualClock(START)
    async with running_sessions(settings, clock, auth_headers()) as app:
        goal_ids = await _seed(app, broker.bootstrap_servers, f"{topic_prefix}goals", 250)
        assert await app.outbox_events() == []
    # The service is down while 500 timers come due.
    await clock.set(PAST_EVERYTHING)
    before = {kind: _fired_late(kind) for kind in ("checkin.due_soon", "checkin.missed")}
    async with running_sessions(settings, clock, auth_headers()) as app:
        await app.scheduler.wait_caught_up(PAST_EVERYTHING, timeout=60)
        exposition = (await app.http.get("/metrics")).text
        emitted = await app.outbox_events()
        await wait_for(lambda: _drained(app), timeout=60, what="outbox drained")
        published = await read_events(
            broker.bootstrap_servers,
            f"{topic_prefix}sessions",
            until=lambda events: len(events) >= len(emitted),
        )
        fired = [timer for timer in await app.timers() if timer.fired_at is not None]

    assert len(emitted) == 500
    assert len({event.id for event in published}) == len(published) == 500
    assert {event.id for event in published} == {timer.id for timer in fired}
    kinds = Counter((event.type, event.partitionkey) for event in published)
    assert set(kinds.values()) == {1}
    assert {goal for _, goal in kinds} == set(goal_ids)
    assert Counter(event.type for event in published) == {
        "checkin.due_soon": 250,
        "checkin.missed": 250,
    }
    for event in published:
        assert isinstance(event, CheckinDueSoon | CheckinMissed)
        assert event.data.reasoning.late is True
        assert event.data.reasoning.fired_at == PAST_EVERYTHING
        assert event.data.reasoning.scheduled_for < PAST_EVERYTHING
    assert all(timer.late for timer in fired)
    assert {kind: _fired_late(kind) - count for kind, count in before.items()} == {
        "checkin.due_soon": 250,
        "checkin.missed": 250,
    }
    assert 'followthrough_scheduler_lag_seconds{kind="checkin.missed",service="sessions"}' in (
        exposition
    )
    # Each goal's reminder went out before its miss.
    order = {event.id: index for index, event in enumerate(published)}
    for goal_id in goal_ids:
        mine = [e for e in published if e.partitionkey == goal_id]
        assert [e.type for e in sorted(mine, key=lambda e: order[e.id])] == [
            "checkin.due_soon",
            "checkin.missed",
        ]


@pytest.mark.parametrize("db_backend", ["postgres"], indirect=True)
async def test_two_replicas_fire_ten_thousand_due_timers_each_exactly_once(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    settings = settings_for(SessionsSettings, scheduler_batch_size=200)
    clock = ManualClock(START)
    async with (
        running_sessions(settings, clock, auth_headers()) as first,
        running_sessions(settings, clock, auth_headers()) as second,
    ):
        await _seed(first, broker.bootstrap_servers, f"{topic_prefix}goals", 5000)
        started = time.perf_counter()
        await clock.set(PAST_EVERYTHING)
        unfired = (
            select(func.count())
            .select_from(Timer)
            .where(Timer.fired_at.is_(None), Timer.due_at <= PAST_EVERYTHING)
        )
        await wait_for(lambda: _zero(first, unfired), timeout=240, what="every due timer fired")
        elapsed = time.perf_counter() - started
        await first.scheduler.wait_caught_up(PAST_EVERYTHING, timeout=60)
        await second.scheduler.wait_caught_up(PAST_EVERYTHING, timeout=60)
        emitted = await first.outbox_events()
        fired = [timer for timer in await first.timers() if timer.fired_at is not None]

    assert len(fired) == 10_000
    assert len(emitted) == 10_000
    assert len({event.id for event in emitted}) == 10_000, "no event was emitted twice"
    assert {event.id for event in emitted} == {timer.id for timer in fired}
    by_replica = Counter(timer.fired_by for timer in fired)
    assert set(by_replica) == {first.scheduler.replica, second.scheduler.replica}, by_replica
    assert first.scheduler.fired_total + second.scheduler.fired_total == 10_000
    print(  # noqa: T201 - the figure the report quotes
        f"two replicas fired 10000 timers in {elapsed:.1f}s, split {dict(by_replica)}"
    )


def _fired_late(kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "followthrough_timers_fired_total", {"service": "sessions", "kind": kind, "late": "true"}
    )
    return value or 0.0


async def _drained(app: Sessions) -> bool:
    return await app.unsent() == 0


async def _zero(app: Sessions, query: Any) -> bool:
    return await _count(app, query) == 0


async def test_a_timer_that_cannot_fire_is_set_aside_and_the_others_still_fire(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    healthy, broken = new_goal_id(), new_goal_id()
    events = [
        goal_event(snapshot(goal_id, policy=POLICY, at=START), at=START)
        for goal_id in (healthy, broken)
    ]
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(broker.bootstrap_servers, f"{topic_prefix}goals", events)
        await app.wait_projected(healthy)
        await app.wait_projected(broken)
        # A row that no longer parses (say, written by a faulty migration).
        async with app.database.transaction() as session:
            await session.execute(
                update(GoalProjection)
                .where(GoalProjection.goal_id == broken)
                .values(snapshot={"title": "x", "participants": []})
            )
            # And a timer whose goal does not exist at all.
            orphans = TimerRepository(session)
            orphans.insert(
                [
                    NewTimer(
                        id=new_goal_id(),
                        tenant_id="acme",
                        goal_id="no-such-goal",
                        kind="checkin.missed",
                        level=0,
                        due_at=START + timedelta(hours=1),
                    )
                ]
            )
            await orphans.flush()
        await app.step_to(PAST_EVERYTHING)
        emitted = await app.outbox_events()
        timers = {timer.id: timer for timer in await app.timers()}

    assert [(e.type, e.partitionkey) for e in emitted] == [
        ("checkin.due_soon", healthy),
        ("checkin.missed", healthy),
    ]
    set_aside = [t for t in timers.values() if t.goal_id == broken]
    assert len(set_aside) == 2
    assert {t.fired_by for t in set_aside} == {"failed:ValidationError"}
    (orphan,) = [t for t in timers.values() if t.goal_id == "no-such-goal"]
    assert orphan.fired_by == "failed:orphan"
