"""``make run`` loses nothing: a killed service or broker is restarted, and a new broker refilled.

The stack is the real supervisor (``python -m shared.devstack``) on free ports,
the way a new user first meets Followthrough. An integrator streams goals to
goals and check-ins to sessions, retrying what is refused or unanswered
(with the same ``Idempotency-Key``, as a careful client does); an endpoint
takes ``goal.created`` and ``checkin.completed``. Three seconds in, one
child is killed with ``kill -9`` (goals, sessions, notifications or the
memory-only broker, which comes back empty, as a new cluster; it is killed
while it holds events notifications has not read yet), or the whole stack is
stopped with Ctrl-C and started again on the same data folder.

Every goal created and every check-in recorded must reach the endpoint:
counted by ``webhook-id``, none lost, duplicates reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from shared.devstack.processes import wait_until
from tests.reliability.conftest import RecordResult
from tests.reliability.harness import wait_for
from tests.services.goals.fixtures import goal_body
from tests.support.devstack import SupervisedStack, gone, supervised_stack
from tests.support.receiver import Receiver, running_receiver

__all__ = ["supervised_stack"]

pytestmark = pytest.mark.reliability

STREAM_SECONDS = 10.0
FAULT_AFTER_SECONDS = 3.0
EVENT_TYPES = ["goal.created", "checkin.completed"]


class Integrator:
    """Sends until accepted: the same request and ``Idempotency-Key`` on every retry.

    Unanswered, a 5xx, or a 409 "still in progress" (the process that took the
    first attempt was killed with it; its claim lapses) is retried after a pause.
    """

    def __init__(self, http: httpx.AsyncClient, stack: SupervisedStack) -> None:
        self.http = http
        self.urls = {name: f"http://127.0.0.1:{stack.ports[name]}" for name in stack.ports}
        self.goals: list[str] = []
        self.checkins: list[str] = []
        self.retries = 0

    async def until_accepted(self, service: str, path: str, body: Any) -> httpx.Response:
        key = uuid.uuid4().hex
        while True:
            try:
                answer = await self.http.post(
                    f"{self.urls[service]}{path}", json=body, headers={"Idempotency-Key": key}
                )
                if answer.status_code < 500 and not _in_progress(answer):
                    return answer
            except httpx.HTTPError:
                pass
            self.retries += 1
            await asyncio.sleep(0.2)

    async def create_goal(self, ref: str) -> str:
        answer = await self.until_accepted(
            "goals", "/v1/goals", goal_body(external_ref=ref, milestones=[])
        )
        assert answer.status_code == 201, answer.text
        goal_id = str(answer.json()["id"])
        self.goals.append(goal_id)
        return goal_id

    async def check_in(self, goal_id: str) -> None:
        while True:
            answer = await self.until_accepted("sessions", "/v1/checkins", {"goal_id": goal_id})
            if answer.status_code == 201:
                self.checkins.append(str(answer.json()["id"]))
                return
            assert answer.status_code == 404, answer.text  # sessions has not heard of it yet
            await asyncio.sleep(0.2)

    async def stream(self, anchors: list[str], until: float) -> None:
        number = 0
        while time.monotonic() < until:
            await self.create_goal(f"stream-{number}")
            if number % 3 == 0:
                await self.check_in(anchors[number % len(anchors)])
            number += 1
            await asyncio.sleep(0.05)


def _in_progress(answer: httpx.Response) -> bool:
    return answer.status_code == 409 and answer.json()["type"].endswith(
        "/idempotency-key-in-progress"
    )


async def created_events(http: httpx.AsyncClient, goals_url: str, goal_ids: list[str]) -> set[str]:
    """The ``goal.created`` event goals committed for each goal (from its history)."""
    ids: set[str] = set()
    for goal_id in goal_ids:
        page = await http.get(f"{goals_url}/v1/goals/{goal_id}/events", params={"limit": "500"})
        assert page.status_code == 200, page.text
        ids.update(e["id"] for e in page.json()["items"] if e["type"] == "goal.created")
    assert len(ids) == len(goal_ids)
    return ids


def delivered(receiver: Receiver, secret: str) -> tuple[Counter[str], set[str], set[str]]:
    """Deliveries by webhook-id, and the goal event ids and check-in ids they carried."""
    verifier = Webhook(secret)
    by_id: Counter[str] = Counter()
    goal_events: set[str] = set()
    checkins: set[str] = set()
    for request in receiver.requests:
        verifier.verify(request.body, request.headers)
        body = json.loads(request.body)
        by_id[request.headers["webhook-id"]] += 1
        if body["type"] == "goal.created":
            goal_events.add(body["id"])
        elif body["type"] == "checkin.completed":
            checkins.add(body["data"]["checkin"]["checkin_id"])
    return by_id, goal_events, checkins


def start_stack(stack: SupervisedStack, keys_file: Path) -> Any:
    stack.env.update(
        {
            "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
            "FOLLOWTHROUGH_ENVIRONMENT": "test",
            "FOLLOWTHROUGH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "FOLLOWTHROUGH_OUTBOX_POLL_SECONDS": "0.5",
            "NOTIFICATIONS_DISPATCH_LEASE_SECONDS": "4",
            "NOTIFICATIONS_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0, 1, 2, 5, 10, 20, 30, 60]",
        }
    )
    supervisor = stack.start()
    stack.wait_healthy(supervisor, timeout=90)
    return supervisor


async def produced(goals_url: str) -> float:
    """Events the goals relay has had acknowledged by the broker (from its /metrics)."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{goals_url}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "followthrough_events_produced"
        for sample in family.samples
        if sample.name.endswith("_total")
    )


async def kill_broker_holding_undelivered_events(
    stack: SupervisedStack, pids: dict[str, int]
) -> None:
    """``kill -9`` of the broker while it holds events no consumer has read yet.

    Notifications is paused (SIGSTOP) until goals has published ten more events,
    so they sit in the broker only; then the broker dies, and notifications resumes.
    """
    goals_url = f"http://127.0.0.1:{stack.ports['goals']}"
    baseline = await produced(goals_url)
    os.kill(pids["notifications"], signal.SIGSTOP)
    try:
        await wait_for(
            lambda: _more_than(goals_url, baseline + 10),
            timeout=30,
            what="ten events published while notifications is paused",
        )
        os.kill(pids["broker"], signal.SIGKILL)
    finally:
        os.kill(pids["notifications"], signal.SIGCONT)


async def _more_than(goals_url: str, count: float) -> bool:
    return await produced(goals_url) >= count


async def inject(fault: str, stack: SupervisedStack, keys_file: Path) -> Any:
    """Apply the fault; returns the supervisor that runs afterwards."""
    supervisor = stack.runs[-1]
    if fault == "ctrl-c":
        supervisor.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(supervisor.wait, 60) == 0
        return await asyncio.to_thread(start_stack, stack, keys_file)
    before = stack.pids()
    if fault == "broker":
        await kill_broker_holding_undelivered_events(stack, before)
    else:
        os.kill(before[fault], signal.SIGKILL)
    await asyncio.to_thread(
        wait_until,
        lambda: stack.pids()[fault] != before[fault],
        timeout=30,
        what=f"the supervisor to restart {fault}",
        alive=lambda: supervisor.poll() is None,
    )
    after = stack.pids()
    assert {n: p for n, p in after.items() if n != fault} == {
        n: p for n, p in before.items() if n != fault
    }, "only the killed child was restarted"
    return supervisor


@pytest.mark.parametrize("fault", ["goals", "sessions", "notifications", "broker", "ctrl-c"])
async def test_nothing_is_lost_when_a_part_of_make_run_dies(
    fault: str,
    supervised_stack: SupervisedStack,
    keys_file: Path,
    auth_headers: Callable[..., dict[str, str]],
    record_result: RecordResult,
) -> None:
    stack = supervised_stack
    await asyncio.to_thread(start_stack, stack, keys_file)
    async with (
        running_receiver() as receiver,
        httpx.AsyncClient(timeout=10, headers=auth_headers()) as http,
    ):
        integrator = Integrator(http, stack)
        created = await integrator.until_accepted(
            "notifications",
            "/v1/endpoints",
            {"url": f"{receiver.url}/hook", "event_types": EVENT_TYPES},
        )
        assert created.status_code == 201, created.text
        secret = str(created.json()["secret"])
        anchors = [await integrator.create_goal(f"anchor-{n}") for n in range(3)]

        began = time.monotonic()
        streaming = asyncio.create_task(integrator.stream(anchors, began + STREAM_SECONDS))
        await asyncio.sleep(FAULT_AFTER_SECONDS)
        supervisor = await inject(fault, stack, keys_file)
        await streaming
        faulted = time.monotonic()

        goal_created = await created_events(http, integrator.urls["goals"], integrator.goals)

        def complete() -> bool:
            _, goal_events, checkins = delivered(receiver, secret)
            return goal_created <= goal_events and set(integrator.checkins) <= checkins

        try:
            await wait_for(complete, timeout=120, what="every goal and check-in to be delivered")
        finally:
            by_id, goal_events, checkins = delivered(receiver, secret)
        recovery = time.monotonic() - faulted

    assert supervisor.poll() is None, "the supervisor kept running"
    children = stack.pids()
    supervisor.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(supervisor.wait, 60) == 0
    assert [name for name, pid in children.items() if not gone(pid)] == []

    lost = len(goal_created - goal_events) + len(set(integrator.checkins) - checkins)
    assert lost == 0
    duplicates = sum(count - 1 for count in by_id.values())
    kind = (
        "Ctrl-C of the whole stack, then make run again"
        if fault == "ctrl-c"
        else (f"make run: kill -9 of {fault}")
    )
    record_result(
        kind,
        events=len(goal_created) + len(integrator.checkins),
        delivered=len(by_id),
        lost=lost,
        duplicates=duplicates,
        recovery_s=recovery,
        notes=(
            f"{len(integrator.goals)} goals and {len(integrator.checkins)} check-ins streamed "
            f"for {STREAM_SECONDS:g} s, fault at {FAULT_AFTER_SECONDS:g} s; "
            f"{integrator.retries} requests retried by the client"
            + (
                "; notifications paused until 10 events sat unread in the broker"
                if fault == "broker"
                else ""
            )
        ),
    )
