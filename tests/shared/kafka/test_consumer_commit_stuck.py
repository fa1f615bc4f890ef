"""A commit the broker keeps refusing as retriable does not stall the consumer for good.

aiokafka retries such a commit without end (a partition the broker no longer
knows, as after a memory-only broker restarted). The runner gives it a
deadline, then starts a fresh client, which rejoins and re-reads what was not
committed: the batch is handled again (handlers deduplicate), nothing is lost.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from shared.kafka import consumer as consumer_module
from tests.shared.kafka.conftest import Workbench
from tests.shared.kafka.test_consumer_commit import IDS, committed, publish_three
from tests.support.consumers import RecordingHandler, running
from tests.support.waiting import eventually


async def test_a_commit_that_never_finishes_restarts_the_client(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "COMMIT_TIMEOUT_SECONDS", 0.5)
    real_commit = AIOKafkaConsumer.commit
    stuck = 0

    async def commit_that_hangs_once(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> None:
        nonlocal stuck
        if stuck == 0:
            stuck += 1
            await asyncio.Event().wait()  # as aiokafka does when it retries forever
        await real_commit(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit_that_hangs_once)
    await publish_three(bench)
    handler = RecordingHandler()
    async with running(bench.runner(handler)):
        await handler.wait(lambda: handler.handled.count(IDS[0]) >= 2)

        async def all_committed() -> bool:
            return await committed(bench) == 3

        await eventually(all_committed, what="the offsets to be committed by the fresh client")
    assert stuck == 1
    assert handler.handled == IDS + IDS  # read again by the fresh client, none lost
