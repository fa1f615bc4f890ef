"""Consumer lag per partition: high watermark minus position, as ``followthrough_consumer_lag``.

Both numbers come from the consumer's own fetch responses. ListOffsets
("end offsets", "latest") is never used: some Kafka-protocol brokers (Tansu)
answer it in batches rather than records, while the high watermark in a fetch
response is a record offset on every broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

from shared import metrics

REFRESH_SECONDS = 1.0


class PartitionLag:
    """The lag of the partitions one consumer holds, refreshed at most once a second.

    Labelled by consumer group as well as service: one process runs several
    consumers (notifications reads the privacy topic in its intake group and
    in its erasure group), and each must neither overwrite nor forget the
    other's series.
    """

    def __init__(self, service: str, group: str) -> None:
        self._service = service
        self._group = group
        self._lag: dict[TopicPartition, int] = {}
        self._observed_at = 0.0

    def snapshot(self) -> dict[TopicPartition, int]:
        return dict(self._lag)

    def refresh_soon(self) -> None:
        self._observed_at = 0.0

    async def observe(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._observed_at < REFRESH_SECONDS:
            return
        lag: dict[TopicPartition, int] = {}
        complete = True
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:  # nothing fetched from it since it was assigned
                complete = False
                continue
            try:
                position = await asyncio.wait_for(consumer.position(tp), 0.5)
            except (IllegalStateError, TimeoutError):
                continue
            lag[tp] = max(0, highwater - position)
        if complete:  # else look again on the next poll, not a second later
            self._observed_at = now
        self.forget(set(self._lag) - set(lag))
        for tp, value in lag.items():
            metrics.CONSUMER_LAG.labels(
                self._service, self._group, tp.topic, str(tp.partition)
            ).set(value)
        self._lag = lag

    def forget(self, partitions: set[TopicPartition] | None = None) -> None:
        """Drop partitions this member no longer holds (all by default): no stale lag is shown."""
        for tp in set(self._lag) if partitions is None else partitions:
            self._lag.pop(tp, None)
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self._service, self._group, tp.topic, str(tp.partition))
