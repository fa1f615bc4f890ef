"""The three narrow crash windows, opened exactly with the test-only fault points.

1. A consumer dies after its work is durable and before its offset commit:
   the batch is read again after the restart and deduplication absorbs it.
2. The outbox relay dies after the broker acknowledged a batch and before it
   marked the rows sent: the restarted relay publishes them again (the same
   event ids twice on the topic) and the consumers absorb the repeat.
3. A second consumer joins while the first holds a batch between its work and
   its commit: the handover waits for the commit, so the newcomer re-reads
   nothing; no event is lost and none causes a second delivery.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.devstack.broker import TansuBroker
from shared.faults import EXIT_CODE
from tests.reliability.conftest import RecordResult
from tests.reliability.harness import Ledger, Stack, goal_event_ids, register_endpoint, wait_for
from tests.services.goals.fixtures import goal_body
from tests.support import postgres
from tests.support.kafka import committed_offsets, read_records
from tests.support.receiver import running_receiver
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.reliability

POLICY = {"cadence": {"kind": "daily"}, "timezone": "Europe/Berlin", "time_of_day": "09:00"}


def _events(stack: Stack, name: str, event: str) -> list[dict[str, Any]]:
    return [line for line in stack.log_lines(name) if line.get("event") == event]


async def _delivered_once_each(
    http: httpx.AsyncClient, notifications: str, event_ids: set[str]
) -> None:
    """Each event is one message with exactly one webhook delivery (no double side effect)."""
    for event_id in event_ids:
        message = (await http.get(f"{notifications}/v1/messages/{event_id}")).json()
        webhooks = [d for d in message["deliveries"] if d["channel"] == "webhook"]
        assert len(webhooks) == 1, (event_id, message["deliveries"])
        assert webhooks[0]["status"] == "succeeded"


async def test_a_consumer_killed_between_its_work_and_its_commit(
    stack: Stack,
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
    record_result: RecordResult,
) -> None:
    crash = "consumer.after_handler=exit"
    async with (
        running_receiver() as receiver,
        httpx.AsyncClient(timeout=30, headers=auth_headers()) as http,
    ):
        await asyncio.gather(
            stack.start("goals"),
            stack.start("sessions", faults=crash),
            stack.start("notifications", faults=crash),
        )
        secret = await register_endpoint(http, stack, receiver)
        created = await http.post(
            f"{stack.url('goals')}/v1/goals", json=goal_body(policy=POLICY, milestones=[])
        )
        assert created.status_code == 201, created.text
        goal_id = created.json()["id"]

        codes = await asyncio.gather(stack.exited("sessions"), stack.exited("notifications"))
        assert list(codes) == [EXIT_CODE, EXIT_CODE]
        topic = f"{topic_prefix}goals"
        for group in ("sessions", "notifications"):
            offsets = await committed_offsets(
                broker.bootstrap_servers, f"{topic_prefix}{group}", topic, range(6)
            )
            assert not any(offsets.values()), (group, offsets)  # the work is done, not committed

        restarted = time.monotonic()
        await asyncio.gather(stack.start("sessions"), stack.start("notifications"))
        expected = await goal_event_ids(http, stack.url("goals"), [goal_id])
        await wait_for(
            lambda: Ledger.of(receiver, expected, secret).complete(),
            timeout=60,
            what="the goal's events at the receiver",
        )
        await wait_for(
            lambda: (
                _events(stack, "sessions", "sessions.event.duplicate")
                and _events(stack, "notifications", "notifications.event.duplicate")
            ),
            timeout=30,
            what="both consumers to read the uncommitted batch again",
        )
        recovery = time.monotonic() - restarted
        await _delivered_once_each(http, stack.url("notifications"), expected)
        schedule = await http.get(f"{stack.url('sessions')}/v1/goals/{goal_id}/schedule")
        assert schedule.status_code == 200, schedule.text
        planned = [(item["kind"], item["at"]) for item in schedule.json()["items"]]
        assert planned
        assert len(planned) == len(set(planned))  # planned once, not twice
        ledger = Ledger.of(receiver, expected, secret)
    ledger.check()
    record_result(
        "consumer killed after its work, before its offset commit (sessions and notifications)",
        **ledger.counts(),
        recovery_s=recovery,
        notes="batch read again after restart; dedupe logged it, no second delivery or plan",
    )


async def test_the_relay_killed_between_publishing_and_marking_sent(
    stack: Stack,
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
    record_result: RecordResult,
) -> None:
    async with (
        running_receiver() as receiver,
        httpx.AsyncClient(timeout=30, headers=auth_headers()) as http,
    ):
        await asyncio.gather(
            stack.start("goals", faults="relay.after_publish=exit"),
            stack.start("sessions"),
            stack.start("notifications"),
        )
        secret = await register_endpoint(http, stack, receiver)
        created = await http.post(
            f"{stack.url('goals')}/v1/goals", json=goal_body(policy=POLICY, milestones=[])
        )
        assert created.status_code == 201, created.text
        goal_id = created.json()["id"]
        assert await stack.exited("goals") == EXIT_CODE

        restarted = time.monotonic()
        await stack.start("goals")
        expected = await goal_event_ids(http, stack.url("goals"), [goal_id])
        (event_id,) = expected
        records = await read_records(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            until=lambda rs: sum(event_id.encode() in r.value for r in rs) >= 2,
            timeout=60,
        )
        recovery = time.monotonic() - restarted
        await wait_for(
            lambda: Ledger.of(receiver, expected, secret).complete(),
            timeout=60,
            what="the goal's event at the receiver",
        )
        await wait_for(
            lambda: (
                _events(stack, "notifications", "notifications.event.duplicate")
                and _events(stack, "sessions", "sessions.event.duplicate")
            ),
            timeout=30,
            what="both consumers to see the second copy",
        )
        await _delivered_once_each(http, stack.url("notifications"), expected)
        ledger = Ledger.of(receiver, expected, secret)
    ledger.check()
    assert sum(event_id.encode() in r.value for r in records) == 2  # published twice
    record_result(
        "outbox relay killed after publishing, before marking rows sent (goals)",
        **ledger.counts(),
        recovery_s=recovery,
        notes="the event is on Kafka twice with one id; consumers deduplicated, one webhook",
    )


async def test_a_rebalance_while_a_batch_is_between_work_and_commit(
    stack: Stack,
    auth_headers: Callable[..., dict[str, str]],
    postgres_reachable: bool,
    tmp_path: Path,
    record_result: RecordResult,
) -> None:
    if not postgres_reachable:
        pytest.skip(f"PostgreSQL not reachable at {postgres.ADMIN_DSN}")
    name, dsn = postgres.create_database("rebalance")
    shared_db = {"NOTIFICATIONS_DATABASE_URL": dsn}
    joiner = ServiceProcess(
        "notifications", {**stack.env, **shared_db}, tmp_path / "notifications-2.log"
    )
    try:
        async with (
            running_receiver() as receiver,
            httpx.AsyncClient(timeout=30, headers=auth_headers()) as http,
        ):
            await asyncio.gather(
                stack.start("goals"),
                stack.start("notifications", faults="consumer.after_handler=sleep:12", **shared_db),
            )
            secret = await register_endpoint(http, stack, receiver)
            batch = [
                {
                    "specversion": "1.0",
                    "id": f"rb-{index}",
                    "source": "/crm",
                    "type": "ingest.goal.upserted",
                    "data": {"external_ref": f"rb-{index}", **goal_body(milestones=[])},
                }
                for index in range(30)
            ]
            answer = await http.post(f"{stack.url('goals')}/v1/events", json=batch)
            assert answer.status_code == 200, answer.text
            goal_ids = [item["goal_id"] for item in answer.json()["results"]]

            await wait_for(
                lambda: _events(stack, "notifications", "fault.injected"),
                timeout=60,
                what="the first member to hold its batch before the commit",
            )
            joined = time.monotonic()
            await asyncio.to_thread(joiner.start, 60.0)
            expected = await goal_event_ids(http, stack.url("goals"), goal_ids)
            await wait_for(
                lambda: Ledger.of(receiver, expected, secret).complete(),
                timeout=90,
                what="every event at the receiver",
            )
            await wait_for(
                lambda: any(
                    line.get("event") == "consumer.partitions.assigned" and line.get("partitions")
                    for line in joiner.log_lines()
                ),
                timeout=60,
                what="the newcomer to get partitions",
            )
            recovery = time.monotonic() - joined
            await _delivered_once_each(http, stack.url("notifications"), expected)
            ledger = Ledger.of(receiver, expected, secret)
        revoked = _events(stack, "notifications", "consumer.partitions.revoked")
        reread = Counter(line.get("event") for line in joiner.log_lines())
    finally:
        await asyncio.to_thread(joiner.stop)
        await stack.stop_all()
        postgres.drop_database(name)
    ledger.check()
    assert ledger.duplicates == 0
    assert any(line.get("partitions") for line in revoked)  # the rebalance did take partitions
    assert reread["notifications.event.duplicate"] == 0  # the held batch was committed first
    record_result(
        "rebalance while a batch is between work and commit (two notifications members)",
        **ledger.counts(),
        recovery_s=recovery,
        notes="the handover waited for the held batch's commit; the newcomer re-read nothing",
    )
