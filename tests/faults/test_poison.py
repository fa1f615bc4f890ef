"""Poison on every consumed topic: dead-lettered with its reason, the consumers keep going,
and the operator CLI re-drives after a fix.

On the ``goals`` topic (consumed by sessions and notifications) and the
``sessions`` topic (consumed by notifications) the test publishes invalid
JSON, an unknown event type, schema-invalid data and an oversize record,
each followed on the same partition by a good event, plus one good event
that a (simulated) bug in the notifications handler cannot process. Every
poison lands on ``<topic>.dlq`` with ``dlq-reason`` and in the service's
``/v1/dead-letters``; every good event behind them is handled. Then the bug
is "fixed" and ``followthrough redrive --all`` sends everything back: the
event the bug had refused is delivered, and the records that can never be
processed are dead-lettered again, with the same reasons, without stopping
anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.notifications import intake
from shared.auth.tokens import ALL_SCOPES
from shared.devstack.broker import TansuBroker
from shared.kafka.consumed import ConsumedEvent
from tests.services.notifications import factories
from tests.support.kafka import read_records
from tests.support.receiver import running_receiver
from tests.support.stack import StackFactory
from tests.support.waiting import eventually

REASONS = ["malformed_json", "unknown_event_type", "invalid_event_data", "oversize"]


def _poisons(good: dict[str, Any]) -> dict[str, bytes]:
    envelope = {key: good[key] for key in ("specversion", "source", "time", "tenantid")}
    return {
        "malformed_json": b'{"specversion": "1.0", "id": "half-an-ev',
        "unknown_event_type": json.dumps(
            {**envelope, "id": f"u-{uuid.uuid4().hex[:8]}", "type": "goal.teleported", "data": {}}
        ).encode(),
        "invalid_event_data": json.dumps(
            {**good, "id": f"i-{uuid.uuid4().hex[:8]}", "data": {"goal": "not a goal"}}
        ).encode(),
        "oversize": json.dumps(
            {**good, "id": f"o-{uuid.uuid4().hex[:8]}", "padding": "x" * 1_200_000}
        ).encode(),
    }


async def _publish(bootstrap: str, topic: str, key: bytes, values: Sequence[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_poison_is_dead_lettered_the_consumers_go_on_and_redrive_works_after_a_fix(
    stack: StackFactory,
    broker: TansuBroker,
    topic_prefix: str,
    auth_headers: Callable[..., dict[str, str]],
    token: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buggy: set[str] = set()
    handle = intake.IntakeHandler.__call__

    async def with_a_bug(self: intake.IntakeHandler, batch: Sequence[ConsumedEvent]) -> None:
        if any(item.event.id in buggy for item in batch):
            raise ValueError("a bug in this release cannot route this event")
        await handle(self, batch)

    monkeypatch.setattr(intake.IntakeHandler, "__call__", with_a_bug)
    headers = auth_headers()
    operator = {"Authorization": f"Bearer {token('acme', ALL_SCOPES)}"}
    async with (
        running_receiver() as receiver,
        stack(notifications={"consumer_handler_retries": 1}) as running,
        httpx.AsyncClient(timeout=30) as http,
    ):
        notifications, sessions = running.urls["notifications"], running.urls["sessions"]
        created = await http.post(
            f"{notifications}/v1/endpoints",
            json={"url": f"{receiver.url}/hook", "event_types": ["*"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text

        goal = factories.goal_ref()
        good = {
            "goals": [factories.milestone_completed() for _ in range(2)],
            "sessions": [factories.checkin_missed(goal), factories.checkin_completed(goal)],
        }
        bug = factories.checkin_due_soon(goal)
        buggy.add(bug.id)
        for name, events in good.items():
            topic = f"{topic_prefix}{name}"
            first, after = events
            poisons = list(_poisons(first.to_dict()).values())
            values = [first.to_json(), *poisons, after.to_json()]
            if name == "sessions":
                values.insert(2, bug.to_json())
            await _publish(broker.bootstrap_servers, topic, b"same-partition", values)

        # Every good event, including those behind the poison, is delivered.
        wanted = {event.id for events in good.values() for event in events}
        await receiver.wait_for(len(wanted), timeout=60)
        delivered = {request.headers["webhook-id"] for request in receiver.requests}
        assert delivered == wanted

        async def dead_letters(url: str) -> list[dict[str, Any]]:
            page = await http.get(f"{url}/v1/dead-letters", params={"limit": 200}, headers=operator)
            assert page.status_code == 200, page.text
            return list(page.json()["items"])

        async def all_dead() -> bool:
            return len(await dead_letters(notifications)) == 9 and (
                len(await dead_letters(sessions)) == 4
            )

        await eventually(all_dead, timeout=60, what="every poison in /v1/dead-letters")
        by_topic = Counter(
            (item["topic"].removeprefix(topic_prefix), item["reason"])
            for item in await dead_letters(notifications)
        )
        for name in ("goals", "sessions"):
            for reason in REASONS:
                assert by_topic[(name, reason)] == 1, (name, reason, by_topic)
        assert by_topic[("sessions", "handler_failed")] == 1
        sessions_reasons = sorted(item["reason"] for item in await dead_letters(sessions))
        assert sessions_reasons == sorted(REASONS)

        # The dead-letter topics hold the original records with the reason in their headers.
        for name, expected in (("goals", 8), ("sessions", 5)):
            records = await read_records(
                broker.bootstrap_servers,
                f"{topic_prefix}{name}.dlq",
                until=lambda rs, n=expected: len(rs) >= n,  # type: ignore[misc]
            )
            reasons = Counter(dict(r.headers)["dlq-reason"].decode() for r in records)
            assert set(reasons) == set(REASONS) | (
                {"handler_failed"} if name == "sessions" else set()
            )

        # The fix is deployed; the operator re-drives everything through the CLI.
        buggy.clear()
        env = {
            **os.environ,
            "FOLLOWTHROUGH_NOTIFICATIONS_URL": notifications,
            "FOLLOWTHROUGH_TOKEN": operator["Authorization"][7:],
        }
        command = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "--json",
            "redrive",
            "--service",
            "notifications",
            "--all",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(command.communicate(), 60)
        assert command.returncode == 0, (out, err)
        assert len(json.loads(out)) == 9
        await receiver.wait_for(len(wanted) + 1, timeout=60)
        assert bug.id in {request.headers["webhook-id"] for request in receiver.requests}

        async def settled() -> bool:
            items = await dead_letters(notifications)
            return Counter(item["status"] for item in items) == {"redriven": 9, "dead": 8}

        await eventually(settled, timeout=60, what="the re-driven poison to be dead again")
        again = [item for item in await dead_letters(notifications) if item["status"] == "dead"]
        assert sorted(item["reason"] for item in again) == sorted(REASONS * 2)
        # Still going: one more good event after all that is delivered too.
        late = factories.checkin_missed(goal)
        await _publish(broker.bootstrap_servers, f"{topic_prefix}sessions", b"x", [late.to_json()])
        await receiver.wait_for(len(wanted) + 2, timeout=60)
    counted = Counter(request.headers["webhook-id"] for request in receiver.requests)
    assert counted[bug.id] == 1
    assert all(count == 1 for count in counted.values())  # re-driving duplicated nothing
