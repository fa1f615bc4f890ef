"""Storage stops growing: with retention of seconds, traffic tables stay flat, nothing lost.

The short form of the retention soak (``bench/retention.py``): ``make run``'s
stack with every kind of traffic record kept ``WINDOW`` seconds (the safety
floors off, the purger every second). Goals are created and abandoned at a
steady pace for several windows, each ``goal.created`` followed to its
webhook. After each window a census counts the rows of every table of the
three SQLite databases and their file sizes. Every traffic table stays within
1.2x of the first window's count (the purgers remove what is past its window
as fast as traffic adds it), and every database file within 1.2x of its size
after the second window: during the first nothing is old enough to purge, so
the file grows until the purgers' first full cycle, and from then on SQLite
reuses the pages they free. Every goal created reached the endpoint: the
purgers removed only what had done its work.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared.retention.soak import Census, growth, soak_environment, take_census
from tests.reliability.conftest import RecordResult
from tests.reliability.harness import wait_for
from tests.services.goals.fixtures import goal_body
from tests.support.devstack import SupervisedStack, supervised_stack
from tests.support.receiver import Receiver, running_receiver

__all__ = ["supervised_stack"]

pytestmark = pytest.mark.reliability

WINDOW = 5
WINDOWS = 5
PACE_SECONDS = 0.125
LIMIT = 1.2


def delivered_goals(receiver: Receiver) -> set[str]:
    return {
        body["data"]["goal"]["goal_id"]
        for body in (json.loads(request.body) for request in receiver.requests)
        if body["type"] == "goal.created"
    }


async def stream_one_window(http: httpx.AsyncClient, goals_url: str, created: list[str]) -> None:
    """Create and abandon goals for one window: closed goals are what the purgers may remove.

    One goal every ``PACE_SECONDS`` on the clock, not a pause after each: with
    a pause, a window's goal count followed how fast the requests were
    answered, and a run whose first window carried 39 goals against 43 and 45
    in later ones failed at 1.21x, growth the purgers had nothing to do with.
    On a schedule every window carries the same traffic.
    """
    started = time.monotonic()
    for n in itertools.count():
        due = started + n * PACE_SECONDS
        if due >= started + WINDOW:
            return
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        answer = await http.post(f"{goals_url}/v1/goals", json=goal_body(milestones=[]))
        assert answer.status_code == 201, answer.text
        goal_id = str(answer.json()["id"])
        created.append(goal_id)
        closed = await http.post(f"{goals_url}/v1/goals/{goal_id}/abandon")
        assert closed.status_code == 200, closed.text


async def test_storage_stays_flat_over_retention_windows_and_nothing_is_lost(
    supervised_stack: SupervisedStack,
    keys_file: Path,
    auth_headers: Callable[..., dict[str, str]],
    record_result: RecordResult,
) -> None:
    stack = supervised_stack
    stack.env.update(
        {
            "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
            "FOLLOWTHROUGH_ENVIRONMENT": "test",
            **soak_environment(WINDOW),
        }
    )
    supervisor = stack.start()
    try:
        await asyncio.to_thread(stack.wait_healthy, supervisor, 90)
        goals_url = f"http://127.0.0.1:{stack.ports['goals']}"
        notifications_url = f"http://127.0.0.1:{stack.ports['notifications']}"
        created: list[str] = []
        censuses: list[Census] = []
        async with (
            running_receiver() as receiver,
            httpx.AsyncClient(timeout=10, headers=auth_headers()) as http,
        ):
            endpoint = await http.post(
                f"{notifications_url}/v1/endpoints",
                json={"url": f"{receiver.url}/hook", "event_types": ["goal.created"]},
            )
            assert endpoint.status_code == 201, endpoint.text
            for _ in range(WINDOWS):
                await stream_one_window(http, goals_url, created)
                censuses.append(await take_census(stack.data_dir))
            await wait_for(
                lambda: set(created) <= delivered_goals(receiver),
                timeout=60,
                what="every goal.created to reach the endpoint",
            )
            lost = set(created) - delivered_goals(receiver)
            deliveries = len(receiver.requests)
    finally:
        supervisor.send_signal(signal.SIGINT)
        await asyncio.to_thread(supervisor.wait, 60)

    first, later = censuses[0], censuses[1:]
    rows = growth(
        first.traffic, {k: max(c.traffic.get(k, 0) for c in later) for k in first.traffic}
    )
    settled, after = censuses[1], censuses[2:]
    sizes = growth(
        settled.bytes, {k: max(c.bytes[k] for c in after) for k in settled.bytes}, floor=1
    )
    # The traffic had somewhere to go: it reached the tables the purgers look after.
    assert first.rows["notifications.messages"] > 0
    assert first.rows["goals.outbox"] > 0
    assert rows <= LIMIT, [c.traffic for c in censuses]
    assert sizes <= LIMIT, [c.bytes for c in censuses]
    assert lost == set()
    record_result(
        f"retention soak: {WINDOWS} windows of {WINDOW} s",
        events=len(created),
        delivered=deliveries,
        lost=len(lost),
        duplicates=deliveries - len(created),
        recovery_s=None,
        notes=(f"traffic rows {rows}x of the first window, database files {sizes}x of the second"),
    )
