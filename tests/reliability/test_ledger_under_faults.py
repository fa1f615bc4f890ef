"""The ledger under faults: a steady stream through all three services while each is killed.

For about twenty seconds an integrator sends goal events in batches (new
goals with a daily check-in policy, progress reports) and mentees check in on
half of the goals. Meanwhile the harness ``kill -9``s goals while its outbox
relay is publishing the stream, then notifications while it is delivering,
and restarts each; at the minute the other half of the goals' check-ins fall
due, it kills sessions as its scheduler fires their misses, and restarts it.

Afterwards every event goals committed (each goal's history) and every event
sessions published (check-ins, streaks, misses; its counts checked against
what it had planned) must have reached the receiver: none lost, duplicates
counted (each with the same webhook-id and body).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.devstack.broker import TansuBroker
from shared.events import CloudEvent
from tests.reliability.conftest import RecordResult
from tests.reliability.harness import Ledger, Stack, goal_event_ids, register_endpoint, wait_for
from tests.services.goals.fixtures import goal_body
from tests.support.kafka import read_events
from tests.support.receiver import Received, Reply, running_receiver

pytestmark = pytest.mark.reliability

STREAM_SECONDS = 20.0
BATCH_EVERY = 0.5


def _due_minute(after: datetime) -> datetime:
    """The first whole minute at least ``after``."""
    minute = after.replace(second=0, microsecond=0)
    return minute if minute >= after else minute + timedelta(minutes=1)


class Integrator:
    """Sends until accepted, as a careful integrator would: same ids on every retry."""

    def __init__(self, http: httpx.AsyncClient, stack: Stack, due: datetime) -> None:
        self.http = http
        self.stack = stack
        self.policy = {
            "cadence": {"kind": "daily"},
            "timezone": "UTC",
            "time_of_day": due.strftime("%H:%M"),
            "reminder_lead_minutes": [],
            "grace_minutes": 0,
        }
        self.goals: dict[str, str] = {}  # external ref -> goal id
        self.checkins: dict[str, str] = {}  # goal id -> check-in id
        self.retries = 0
        self._numbers = itertools.count()

    async def _until_accepted(self, method: str, service: str, path: str, body: Any) -> Any:
        while True:
            try:
                answer = await self.http.request(
                    method, f"{self.stack.url(service)}{path}", json=body
                )
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code < 500:
                return answer
            self.retries += 1
            await asyncio.sleep(0.2)

    async def send_batch(self) -> None:
        items = []
        for _ in range(2):
            number = next(self._numbers)
            ref = f"ledger-{number}"
            items.append(
                {
                    "specversion": "1.0",
                    "id": f"up-{number}",
                    "source": "/crm",
                    "type": "ingest.goal.upserted",
                    "data": {"external_ref": ref, **goal_body(policy=self.policy, milestones=[])},
                }
            )
        for ref in list(self.goals)[-6:][::3]:
            number = next(self._numbers)
            items.append(
                {
                    "specversion": "1.0",
                    "id": f"pr-{number}",
                    "source": "/crm",
                    "type": "ingest.progress.reported",
                    "data": {"goal": {"external_ref": ref}, "percent": number % 100},
                }
            )
        answer = await self._until_accepted("POST", "goals", "/v1/events", items)
        assert answer.status_code == 200, answer.text
        for item in answer.json()["results"]:
            assert item["status"] in ("accepted", "duplicate"), item
            if item["goal_id"] and item["id"].startswith("up-"):
                self.goals[f"ledger-{item['id'].removeprefix('up-')}"] = item["goal_id"]

    async def check_in_every_other_goal(self, stop: asyncio.Event) -> None:
        """Half the goals get a check-in as soon as sessions knows them."""
        while not stop.is_set() or len(self.checkins) < len(self.goals) // 2:
            wanted = [gid for n, gid in enumerate(self.goals.values()) if n % 2 == 0]
            for goal_id in wanted:
                if goal_id in self.checkins:
                    continue
                answer = await self._until_accepted(
                    "POST", "sessions", "/v1/checkins", {"goal_id": goal_id}
                )
                if answer.status_code == 201:
                    self.checkins[goal_id] = answer.json()["id"]
                else:
                    assert answer.status_code == 404, answer.text  # not projected yet
            await asyncio.sleep(0.2)


class SlowReceiver:
    """Answers after 100 ms, so deliveries are in flight at any moment of the stream."""

    def __init__(self) -> None:
        self.in_flight = 0

    async def __call__(self, _: Received) -> Reply:
        self.in_flight += 1
        try:
            await asyncio.sleep(0.1)
        finally:
            self.in_flight -= 1
        return Reply()


async def _kill_and_restart(stack: Stack, name: str, downtimes: dict[str, float]) -> None:
    killed = time.monotonic()
    await stack.kill(name)
    await stack.start(name)
    downtimes[name] = time.monotonic() - killed


async def test_nothing_is_lost_while_each_service_is_killed_in_turn(
    stack: Stack,
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
    record_result: RecordResult,
) -> None:
    downtimes: dict[str, float] = {}
    slow = SlowReceiver()
    async with (
        running_receiver(slow) as receiver,
        httpx.AsyncClient(timeout=30, headers=auth_headers()) as http,
    ):
        await asyncio.gather(
            *(stack.start(name) for name in ("goals", "sessions", "notifications"))
        )
        secret = await register_endpoint(http, stack, receiver)
        started = datetime.now(UTC)
        due = _due_minute(started + timedelta(seconds=STREAM_SECONDS + 15))
        integrator = Integrator(http, stack, due)
        stop = asyncio.Event()
        checking_in = asyncio.create_task(integrator.check_in_every_other_goal(stop))

        async def stream() -> None:
            end = time.monotonic() + STREAM_SECONDS
            while time.monotonic() < end:
                await integrator.send_batch()
                await asyncio.sleep(BATCH_EVERY)

        async def faults() -> None:
            await asyncio.sleep(STREAM_SECONDS * 0.25)
            await _kill_and_restart(stack, "goals", downtimes)  # mid-stream: relay publishing
            await asyncio.sleep(STREAM_SECONDS * 0.2)
            await wait_for(
                lambda: slow.in_flight > 0, timeout=30, what="a delivery in flight", interval=0.01
            )
            await _kill_and_restart(stack, "notifications", downtimes)  # mid-delivery

        await asyncio.gather(stream(), faults())
        stop.set()
        await checking_in
        without_checkin = [
            gid for gid in integrator.goals.values() if gid not in integrator.checkins
        ]

        # Before the minute comes: what sessions plans to fire then (a miss for each goal
        # without a check-in), so its published misses can be counted against its own plan.
        planned_misses = 0
        for goal_id in without_checkin:
            forecast = await http.get(
                f"{stack.url('sessions')}/v1/goals/{goal_id}/schedule",
                params={"until": (due + timedelta(minutes=1)).isoformat()},
            )
            assert forecast.status_code == 200, forecast.text
            planned_misses += sum(
                item["kind"] == "checkin.missed" and item["at"].startswith(due.isoformat()[:16])
                for item in forecast.json()["items"]
            )
        assert planned_misses == len(without_checkin)

        # The minute: kill sessions as its scheduler fires the misses, then restart it.
        # (The pass over ~30 misses takes tens of milliseconds: the kill lands in it or just
        # after its commit; the notes of the results table say which.)
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() + 0.03))
        pass_before_kill = any(
            line.get("event") == "sessions.scheduler.pass" for line in stack.log_lines("sessions")
        )
        await _kill_and_restart(stack, "sessions", downtimes)
        restarted = time.monotonic()

        expected_goal_events = await goal_event_ids(
            http, stack.url("goals"), integrator.goals.values()
        )

        def sessions_done(events: list[CloudEvent]) -> bool:
            kinds = [e.type for e in events]
            return kinds.count("checkin.missed") >= planned_misses and kinds.count(
                "checkin.completed"
            ) >= len(integrator.checkins)

        published = await read_events(
            broker.bootstrap_servers, f"{topic_prefix}sessions", until=sessions_done, timeout=120
        )
        by_id = {event.id: event for event in published}
        kinds = [event.type for event in by_id.values()]
        assert kinds.count("checkin.missed") == planned_misses  # each planned miss fired once
        assert kinds.count("checkin.completed") == len(integrator.checkins)
        completed = {
            event.data.checkin.checkin_id  # type: ignore[attr-defined]
            for event in by_id.values()
            if event.type == "checkin.completed"
        }
        assert completed == set(integrator.checkins.values())  # every accepted check-in
        expected = expected_goal_events | by_id.keys()
        await wait_for(
            lambda: Ledger.of(receiver, expected, secret).complete(),
            timeout=120,
            what="every expected event at the receiver",
        )
        drained = time.monotonic() - restarted
        await asyncio.sleep(1.0)  # let a late duplicate land before counting
        ledger = Ledger.of(receiver, expected, secret)
    ledger.check()
    record_result(
        "kill -9 of goals (relaying), notifications (delivering), sessions (firing misses), "
        "each restarted, under a steady stream",
        **ledger.counts(),
        recovery_s=drained,
        notes=(
            f"{len(integrator.goals)} goals, {len(integrator.checkins)} check-ins, "
            f"{planned_misses} misses fired; restarts took "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in downtimes.items())
            + f"; {integrator.retries} client retries; sessions killed "
            + ("after" if pass_before_kill else "during")
            + " its firing pass"
        ),
    )
