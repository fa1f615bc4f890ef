"""The transactional outbox on SQLite and PostgreSQL, relayed to the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from shared.db.database import Database
from shared.db.tables import outbox
from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.events import CloudEvent
from shared.kafka.cluster import BrokerWatch
from shared.kafka.producer import EventProducer
from shared.kafka.topics import ensure_topics
from shared.outbox import Outbox, OutboxRelay
from shared.settings import ServiceSettings
from tests.support.apps import make_settings
from tests.support.consumers import metric
from tests.support.events import endpoint_disabled
from tests.support.kafka import read_events
from tests.support.lifecycle import started
from tests.support.waiting import eventually


@dataclass
class Parts:
    database: Database
    outbox: Outbox
    producer: EventProducer
    settings: ServiceSettings
    service: str

    @property
    def topic(self) -> str:
        return f"{self.settings.kafka_topic_prefix}notifications"

    def relay(self, watch: BrokerWatch | None = None, **options: float) -> OutboxRelay:
        return OutboxRelay(
            database=self.database,
            producer=self.producer,
            outbox_writer=self.outbox,
            service=self.service,
            poll_seconds=options.get("poll_seconds", 60.0),
            gauge_seconds=options.get("gauge_seconds", 0.05),
            watch=watch,
        )

    async def commit(self, *events: CloudEvent) -> None:
        async with self.database.transaction() as session:
            await self.outbox.add(session, events)

    async def rows(self) -> list[tuple[str, bool]]:
        async with self.database.reader() as session:
            result = await session.execute(
                select(outbox.c.event_id, outbox.c.sent_at.is_not(None)).order_by(outbox.c.id)
            )
            return [(event_id, bool(sent)) for event_id, sent in result.all()]


@pytest.fixture
async def parts(
    database: Database,
    broker: TansuBroker,
    topic_prefix: str,
    keys_file: object,
    tmp_path: object,
    service_name: str,
) -> AsyncIterator[Parts]:
    settings = make_settings(
        ServiceSettings,
        data_dir=tmp_path,  # type: ignore[arg-type]
        bootstrap=broker.bootstrap_servers,
        topic_prefix=topic_prefix,
        keys_file=keys_file,  # type: ignore[arg-type]
        kafka_topic_partitions=3,
    )
    producer = EventProducer(settings, client_id="test-outbox")
    built = Parts(database, Outbox(topic_prefix=topic_prefix), producer, settings, service_name)
    await ensure_topics(settings, [built.topic])
    try:
        yield built
    finally:
        await producer.stop()


async def test_a_rolled_back_transaction_publishes_nothing(parts: Parts) -> None:
    async def failing_change() -> None:
        async with parts.database.transaction() as session:
            await parts.outbox.add(session, [endpoint_disabled(1)])
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        await failing_change()
    await parts.commit(endpoint_disabled(2))

    async with started(parts.relay()):
        # Whatever the relay would publish for 1 would precede 2 on the same key.
        events = await read_events(
            parts.settings.kafka_bootstrap_servers,
            parts.topic,
            until=lambda events: any(e.id == "evt-0002" for e in events),
        )
    assert [event.id for event in events] == ["evt-0002"]
    assert await parts.rows() == [("evt-0002", True)]


async def test_the_relay_is_woken_by_the_commit_not_by_polling(parts: Parts) -> None:
    relay = parts.relay(poll_seconds=60.0)  # a poll would come far too late for this test
    async with started(relay):
        await asyncio.wait_for(relay.idle.wait(), 10)  # drained and waiting for the next poll
        await parts.commit(endpoint_disabled(1), endpoint_disabled(2))
        events = await read_events(
            parts.settings.kafka_bootstrap_servers,
            parts.topic,
            until=lambda events: len(events) >= 2,
            timeout=10,
        )
        # Both gauges at once: a refresh between the commit and the publish shows the rows
        # waiting (backlog 2, some age), and the backlog alone may still read 0 from before.
        await eventually(
            lambda: (
                metric("followthrough_outbox_backlog", service=parts.service) == 0
                and metric("followthrough_outbox_oldest_age_seconds", service=parts.service) == 0
            )
        )
    assert [event.id for event in events] == ["evt-0001", "evt-0002"]
    assert await parts.rows() == [("evt-0001", True), ("evt-0002", True)]
    produced = {"service": parts.service, "type": "endpoint.disabled"}
    assert metric("followthrough_events_produced_total", **produced) == 2


async def test_gauges_count_unsent_rows_and_their_age_while_the_broker_is_away(
    parts: Parts,
) -> None:
    parts.producer = EventProducer(
        parts.settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"}),
        client_id="test-outbox-nowhere",
    )
    await parts.commit(endpoint_disabled(1))
    await asyncio.sleep(0.01)  # the oldest row's age must be measurably above zero
    await parts.commit(endpoint_disabled(2), endpoint_disabled(3))

    async with started(parts.relay()):
        await eventually(lambda: metric("followthrough_outbox_backlog", service=parts.service) == 3)
        age = metric("followthrough_outbox_oldest_age_seconds", service=parts.service)
    await parts.producer.stop()

    assert age is not None
    assert 0.01 <= age < 60
    assert await parts.rows() == [("evt-0001", False), ("evt-0002", False), ("evt-0003", False)]


async def test_a_relay_started_again_on_the_same_cluster_replays_nothing(parts: Parts) -> None:
    """Only a new cluster is refilled: a service restart must not publish its last day again."""
    async with started(BrokerWatch(parts.settings)) as watch:
        async with started(parts.relay(watch)):
            await parts.commit(endpoint_disabled(1), endpoint_disabled(2))
            await eventually(lambda: _all_sent(parts), what="both events published")
        async with started(parts.relay(watch)):  # the service restarted
            await parts.commit(endpoint_disabled(3))
            await eventually(lambda: _all_sent(parts), what="the third published")
    events = await read_events(
        parts.settings.kafka_bootstrap_servers,
        parts.topic,
        until=lambda events: any(e.id == "evt-0003" for e in events),
    )
    assert sorted(event.id for event in events) == ["evt-0001", "evt-0002", "evt-0003"]
    assert metric("followthrough_outbox_replayed_total", service=parts.service) == 0


async def _all_sent(parts: Parts) -> bool:
    return all(sent for _, sent in await parts.rows())
