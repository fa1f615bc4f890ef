"""Reading what services published, with an independent aiokafka consumer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from shared.events import CloudEvent, parse_event


async def read_events(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[CloudEvent]], bool],
    timeout: float = 30.0,
) -> list[CloudEvent]:
    """Read ``topic`` from the beginning until ``until(events)`` holds (or time runs out)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    events: list[CloudEvent] = []
    try:
        async with asyncio.timeout(timeout):
            while not until(events):
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    events.extend(parse_event(record.value) for record in records)
    finally:
        await consumer.stop()
    return events
