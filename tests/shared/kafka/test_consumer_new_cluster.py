"""A consumer whose broker comes back as a new, empty cluster reads the new logs from the start.

The broker is a Tansu of this test's own, restarted on the same port: every
start is a cluster of its own id, with empty logs and no committed offsets.
The consumer had read to offset 40 of the old log; on the new one, 60 events
arrive before it fetches again. Kept at its old position it would skip the
first 40 of them, and it does fetch from there: the client reconnects to the
address before anyone has noticed the cluster changed. So the runner handles
nothing fetched while the broker watch does not know the cluster until the
watch confirms it; told it is another, it drops the batch uncommitted and
starts a fresh client, which reads the new log from the (empty) commits there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.devstack.broker import TansuBroker
from shared.kafka.cluster import BrokerWatch
from shared.kafka.consumer import ConsumerRunner
from shared.kafka.producer import EventProducer
from shared.kafka.topics import ensure_topics
from shared.settings import ServiceSettings
from tests.support.apps import make_settings
from tests.support.consumers import RecordingHandler, running
from tests.support.events import endpoint_disabled
from tests.support.kafka import produce
from tests.support.lifecycle import started
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    tansu = TansuBroker(log_file=tmp_path / "own-broker.log")
    tansu.start()
    try:
        yield tansu
    finally:
        tansu.stop()


async def test_after_the_broker_returns_empty_every_new_event_is_handled(
    own_broker: TansuBroker, topic_prefix: str, keys_file: Path, tmp_path: Path
) -> None:
    settings = make_settings(
        ServiceSettings,
        data_dir=tmp_path,
        bootstrap=own_broker.bootstrap_servers,
        topic_prefix=topic_prefix,
        keys_file=keys_file,
        kafka_topic_partitions=1,
        kafka_session_timeout_ms=3000,
        kafka_heartbeat_interval_ms=500,
    )
    topic = settings.topic("events")
    await ensure_topics(settings, [topic])
    old = [endpoint_disabled(n).to_json() for n in range(40)]
    new_ids = [f"evt-{n:04d}" for n in range(1000, 1060)]
    new = [endpoint_disabled(n).to_json() for n in range(1000, 1060)]
    await produce(own_broker.bootstrap_servers, topic, old)

    handler = RecordingHandler()
    watch = BrokerWatch(settings, interval=0.2)
    producer = EventProducer(settings, client_id="test-new-cluster")
    runner = ConsumerRunner(
        settings,
        topics=[topic],
        group_id=f"{topic}.group",
        handler=handler,
        producer=producer,
        service="test-new-cluster",
        retry_delay=0.05,
        broker=watch,
    )
    try:
        async with started(watch), running(runner):
            await handler.wait(lambda: len(handler.handled) == 40)
            first = watch.cluster_id

            own_broker.stop()
            await eventually(lambda: watch.cluster_id is None, what="the watch to lose the broker")
            own_broker.start()
            await ensure_topics(settings, [topic])
            await produce(own_broker.bootstrap_servers, topic, new)
            await eventually(
                lambda: watch.cluster_id not in (None, first), what="the watch to see the new one"
            )

            await handler.wait(lambda: set(new_ids) <= set(handler.handled), timeout=60)
    finally:
        await producer.stop()
    assert [i for i in handler.handled if i in set(new_ids)][:60] == new_ids
