"""Create the topics a service needs, where the deployment lets services do so.

In production topics come from deploy/ with their partitions and retention;
locally and in tests the service creates them so a consumer never subscribes
to a topic that does not exist yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.kafka.config import client_options
from shared.logs import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)


async def ensure_topics(settings: ServiceSettings, topics: Iterable[str]) -> None:
    names = sorted(set(topics))
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        new = [
            NewTopic(name, num_partitions=settings.kafka_topic_partitions, replication_factor=1)
            for name in missing
        ]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
        log.info("kafka.topics.created", topics=missing)
    finally:
        await admin.close()
