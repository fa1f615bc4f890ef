"""The broker goes away and comes back: everything written meanwhile is published, in order per key.

The broker here is a Tansu of this test's own, stopped by its pid and started
again on the same port. Tansu keeps nothing across a restart, so the test
follows the events written while it was down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from shared.db.database import Database
from shared.devstack.broker import TansuBroker
from shared.kafka.producer import EventProducer
from shared.kafka.topics import ensure_topics
from shared.outbox import Outbox, OutboxRelay
from shared.settings import ServiceSettings
from tests.support.apps import make_settings
from tests.support.consumers import metric
from tests.support.events import endpoint_disabled
from tests.support.kafka import read_events, read_records
from tests.support.lifecycle import started
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

KEYS = ("goal-a", "goal-b", "goal-c")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    tansu = TansuBroker(log_file=tmp_path / "own-broker.log")
    tansu.start()
    try:
        yield tansu
    finally:
        tansu.stop()


async def test_events_written_while_the_broker_is_down_are_all_published_in_order_per_key(
    database: Database,
    own_broker: TansuBroker,
    topic_prefix: str,
    keys_file: Path,
    tmp_path: Path,
    service_name: str,
) -> None:
    settings = make_settings(
        ServiceSettings,
        data_dir=tmp_path,
        bootstrap=own_broker.bootstrap_servers,
        topic_prefix=topic_prefix,
        keys_file=keys_file,
        kafka_topic_partitions=3,
    )
    topic = settings.topic("notifications")
    await ensure_topics(settings, [topic])
    writer = Outbox(topic_prefix=topic_prefix)
    producer = EventProducer(settings, client_id="test-outbox-outage")
    relay = OutboxRelay(
        database=database,
        producer=producer,
        outbox_writer=writer,
        service=service_name,
        poll_seconds=60.0,
        gauge_seconds=0.05,
    )

    async def commit(numbers: range) -> None:
        async with database.transaction() as session:
            events = [endpoint_disabled(n, partition_key=KEYS[n % 3]) for n in numbers]
            await writer.add(session, events)

    try:
        async with started(relay):
            await commit(range(0, 1))
            await read_events(own_broker.bootstrap_servers, topic, until=lambda e: len(e) == 1)

            own_broker.stop()
            for start in range(1, 31, 5):  # six transactions while the broker is down
                await commit(range(start, start + 5))
            await eventually(
                lambda: metric("followthrough_outbox_backlog", service=service_name) == 30,
                what="a backlog of 30 while the broker is down",
            )

            own_broker.start()  # a new, empty broker on the same port
            await ensure_topics(settings, [topic])
            records = await read_records(
                own_broker.bootstrap_servers, topic, until=lambda r: len(r) >= 30, timeout=90
            )
            await eventually(
                lambda: metric("followthrough_outbox_backlog", service=service_name) == 0,
                what="an empty backlog",
            )
    finally:
        await producer.stop()

    assert sorted(_ids(records)) == [f"evt-{n:04d}" for n in range(1, 31)]
    for key in KEYS:
        on_key = [r for r in records if r.key == key.encode()]
        written = [f"evt-{n:04d}" for n in range(1, 31) if KEYS[n % 3] == key]
        assert _ids(on_key) == written, key
    assert metric("followthrough_outbox_oldest_age_seconds", service=service_name) == 0


def _ids(records: list[ConsumerRecord[bytes, bytes]]) -> list[str]:
    return [json.loads(record.value)["id"] for record in records]
