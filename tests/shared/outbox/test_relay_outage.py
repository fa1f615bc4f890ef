"""The broker goes away and comes back empty: nothing is lost, and order per key holds.

The broker here is a Tansu of this test's own, stopped by its pid and started
again on the same port. Tansu keeps nothing across a restart and each start
is a cluster of its own id, so the relay, which watches the cluster id,
publishes again what the lost broker held (within the replay window) before
everything written while it was down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from shared.db.database import Database
from shared.devstack.broker import TansuBroker
from shared.kafka.cluster import BrokerWatch
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


async def test_a_broker_restarted_empty_gets_what_it_lost_and_what_was_written_meanwhile(
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
    watch = BrokerWatch(settings, interval=0.2)

    async def create_topics() -> None:
        await ensure_topics(settings, [topic])

    relay = OutboxRelay(
        database=database,
        producer=producer,
        outbox_writer=writer,
        service=service_name,
        poll_seconds=60.0,
        gauge_seconds=0.05,
        watch=watch,
        on_new_cluster=create_topics,
    )
    replayed = metric("followthrough_outbox_replayed_total", service=service_name) or 0

    async def commit(numbers: range) -> None:
        async with database.transaction() as session:
            events = [endpoint_disabled(n, partition_key=KEYS[n % 3]) for n in numbers]
            await writer.add(session, events)

    try:
        async with started(watch), started(relay):
            await commit(range(0, 1))
            await read_events(own_broker.bootstrap_servers, topic, until=lambda e: len(e) == 1)
            first_cluster = own_broker.cluster_id

            own_broker.stop()
            for start in range(1, 31, 5):  # six transactions while the broker is down
                await commit(range(start, start + 5))
            await eventually(
                lambda: metric("followthrough_outbox_backlog", service=service_name) == 30,
                what="a backlog of 30 while the broker is down",
            )

            own_broker.start()  # a new, empty broker on the same port: the relay creates the topic
            assert own_broker.cluster_id != first_cluster
            records = await read_records(
                own_broker.bootstrap_servers,
                topic,
                until=lambda r: _latest_in_written_order(r) and len(set(_ids(r))) == 31,
                timeout=90,
            )
            await eventually(
                lambda: metric("followthrough_outbox_backlog", service=service_name) == 0,
                what="an empty backlog",
            )
    finally:
        await producer.stop()

    # evt-0000 was published to the first broker only; it is published again. Rows the
    # producer had in flight when the broker died may reach the new one before the relay
    # sees the change (published twice then); the replay itself is whole and in order:
    # per key, the latest copy of each event, in log order, is the order written.
    assert sorted(set(_ids(records))) == [f"evt-{n:04d}" for n in range(0, 31)]
    assert _latest_in_written_order(records)
    assert metric("followthrough_outbox_oldest_age_seconds", service=service_name) == 0
    assert (metric("followthrough_outbox_replayed_total", service=service_name) or 0) > replayed


def _ids(records: list[ConsumerRecord[bytes, bytes]]) -> list[str]:
    return [json.loads(record.value)["id"] for record in records]


def _latest_in_written_order(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
    """Per key, the latest copy of each event, in log order, is the order they were written."""
    for key in KEYS:
        on_key = _ids([r for r in records if r.key == key.encode()])
        latest = [i for n, i in enumerate(on_key) if i not in on_key[n + 1 :]]
        if latest != [f"evt-{n:04d}" for n in range(0, 31) if KEYS[n % 3] == key]:
            return False
    return True
