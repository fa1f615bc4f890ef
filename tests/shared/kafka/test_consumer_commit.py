"""The consumer runner commits an offset only after the handler returned."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from tests.shared.kafka.conftest import Workbench
from tests.support.consumers import RecordingHandler, metric, running
from tests.support.events import endpoint_disabled
from tests.support.kafka import committed_offsets, produce
from tests.support.waiting import eventually

IDS = ["evt-0001", "evt-0002", "evt-0003"]


async def publish_three(bench: Workbench) -> None:
    await produce(bench.bootstrap, bench.topic, [endpoint_disabled(n).to_json() for n in (1, 2, 3)])


async def committed(bench: Workbench, group: str = "group") -> int | None:
    offsets = await committed_offsets(bench.bootstrap, f"{bench.topic}.{group}", bench.topic, [0])
    return offsets[0]


async def test_an_unavailable_database_is_retried_and_nothing_is_committed_meanwhile(
    bench: Workbench,
) -> None:
    await publish_three(bench)
    handler = RecordingHandler(unavailable=4)
    runner = bench.runner(handler)
    async with running(runner):
        await handler.wait(lambda: handler.failures >= 2)
        assert await committed(bench) is None
        assert handler.handled == []

        await handler.wait_handled(IDS)
        await _eventually_committed(bench, 3)

    assert handler.handled == IDS
    assert handler.failures == 4
    # An outage is not the messages' fault: nothing was dead-lettered.
    for reason in ("handler_failed", "malformed_json"):
        labels = {"service": bench.service, "topic": bench.topic, "reason": reason}
        assert metric("followthrough_dead_lettered_total", **labels) == 0
    transient = {"service": bench.service, "kind": "transient"}
    assert metric("followthrough_handler_errors_total", **transient) == 4


async def test_a_fresh_member_of_the_group_rereads_what_was_never_committed(
    bench: Workbench,
) -> None:
    await publish_three(bench)
    stuck = RecordingHandler(unavailable=10_000)
    async with running(bench.runner(stuck)):
        await stuck.wait(lambda: stuck.failures >= 1)
    # Stopping while the database is away abandons the batch cleanly, uncommitted.
    assert await committed(bench) is None

    fresh = RecordingHandler()
    async with running(bench.runner(fresh)):
        await fresh.wait_handled(IDS)
        await _eventually_committed(bench, 3)
    assert fresh.handled == IDS


async def test_the_runner_survives_a_commit_error_the_client_does_not_retry(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AIOKafkaConsumer.commit
    broken = {"left": 1}

    async def commit_once_broken(self: AIOKafkaConsumer, offsets: object = None) -> None:
        if broken["left"]:
            broken["left"] -= 1
            raise KafkaError("the coordinator said no")
        await original(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit_once_broken)
    await publish_three(bench)
    handler = RecordingHandler()
    async with running(bench.runner(handler)):
        # The first commit fails, the client restarts from the last commit and
        # the batch is delivered again; handlers dedupe by event id.
        await handler.wait(lambda: handler.handled.count("evt-0001") == 2)
        await _eventually_committed(bench, 3)
    assert set(handler.handled) == set(IDS)


async def _eventually_committed(bench: Workbench, offset: int) -> None:
    async def done() -> bool:
        return await committed(bench) == offset

    await eventually(done, what=f"committed offset {offset}")
