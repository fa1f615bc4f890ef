"""A consumer-runner workbench: a topic and its dead-letter topic per test, on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.devstack.broker import TansuBroker
from shared.kafka.config import dlq_topic
from shared.kafka.consumed import EventHandler
from shared.kafka.consumer import ConsumerRunner
from shared.kafka.producer import EventProducer
from shared.kafka.topics import ensure_topics
from shared.settings import ServiceSettings
from tests.support.apps import make_settings


@dataclass
class Workbench:
    settings: ServiceSettings
    bootstrap: str
    topic: str
    service: str
    producer: EventProducer

    @property
    def dlq(self) -> str:
        return dlq_topic(self.topic)

    async def use_partitions(self, partitions: int) -> None:
        """Switch to a fresh topic with this many partitions (the default one has one)."""
        self.topic = f"{self.settings.kafka_topic_prefix}events{partitions}"
        settings = self.settings.model_copy(update={"kafka_topic_partitions": partitions})
        await ensure_topics(settings, [self.topic, self.dlq])

    def runner(
        self, handler: EventHandler, *, group: str = "group", **options: Any
    ) -> ConsumerRunner:
        options.setdefault("retry_delay", 0.05)
        return ConsumerRunner(
            self.settings,
            topics=[self.topic],
            group_id=f"{self.topic}.{group}",
            handler=handler,
            producer=self.producer,
            service=self.service,
            **options,
        )


@pytest.fixture
async def bench(
    broker: TansuBroker,
    topic_prefix: str,
    keys_file: Path,
    tmp_path: Path,
) -> AsyncIterator[Workbench]:
    settings = make_settings(
        ServiceSettings,
        data_dir=tmp_path,
        bootstrap=broker.bootstrap_servers,
        topic_prefix=topic_prefix,
        keys_file=keys_file,
        kafka_topic_partitions=1,
        consumer_handler_retries=2,
    )
    topic = settings.topic("events")
    await ensure_topics(settings, [topic, dlq_topic(topic)])
    producer = EventProducer(settings, client_id="test-consumer-dlq")
    try:
        yield Workbench(
            settings=settings,
            bootstrap=broker.bootstrap_servers,
            topic=topic,
            service=f"test-{uuid.uuid4().hex[:8]}",
            producer=producer,
        )
    finally:
        await producer.stop()
