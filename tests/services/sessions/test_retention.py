"""Sessions' retention, on SQLite and PostgreSQL: fired timers go after their window.

A weekly schedule runs for a while (reminders fire, a check-in is missed);
40 days later the fired timers (30 days) are purged, the unfired ones (the
plan ahead) never are, and the resolved occurrences
stay inside their 400 days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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
    weekly,
)

START = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_fired_timers_are_purged_after_their_window_the_plan_is_kept(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    settings = settings_for(SessionsSettings, retention_enabled=False, retention_batch_size=3)
    async with running_sessions(settings, clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [goal_event(snapshot(goal_id, policy=weekly(["MO", "WE", "FR"]), at=START), at=START)],
        )
        await app.wait_projected(goal_id)
        await app.step_to(START + timedelta(days=8))  # a week of check-ins, all missed
        fired = [t for t in await app.timers(goal_id) if t.fired_at is not None]
        unfired = [t for t in await app.timers(goal_id) if t.fired_at is None]
        resolved = [o for o in await app.occurrences(goal_id) if o.status != "open"]
        assert len(fired) >= 4
        assert unfired
        assert resolved
        purger = app.app.state.retention

        assert (await purger.run_once())["timers"] == 0  # all fired within the window
        await clock.set(START + timedelta(days=48))
        purged = await purger.run_once()

        # The scheduler fired what fell due on the way too; only what fired before the
        # window's start went.
        cutoff = START + timedelta(days=18)
        assert purged["timers"] >= len(fired)
        assert purged["occurrences"] == 0
        left = await app.timers(goal_id)
        assert not {t.id for t in fired} & {t.id for t in left}
        assert all(t.fired_at is None or t.fired_at >= cutoff for t in left)
        assert any(t.fired_at is None for t in left)  # the plan ahead
        still = {o.id for o in await app.occurrences(goal_id)}
        assert {o.id for o in resolved} <= still
