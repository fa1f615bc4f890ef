"""The one Kafka producer a service owns, used by the outbox relay and the dead-letter path.

acks=all always; idempotence only where the broker supports it (Tansu does
not), so it is a setting, off by default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from shared.kafka.config import client_options
from shared.settings import ServiceSettings

MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Above a consumer's event limit (1 MiB), so an oversize record can still be dead-lettered
and re-driven whole where the broker allows it."""


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class EventProducer:
    def __init__(self, settings: ServiceSettings, *, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def ensure_started(self) -> AIOKafkaProducer:
        """Start the client on first use; raises while the broker is unreachable."""
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **client_options(self._settings),
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=self._settings.kafka_enable_idempotence,
                    linger_ms=0,  # send_many queues a whole batch before the sender runs
                    max_batch_size=256 * 1024,
                    max_request_size=MAX_REQUEST_BYTES,
                    request_timeout_ms=15_000,
                    compression_type=None,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send_many(self, records: Sequence[OutboundRecord]) -> list[BaseException | None]:
        """Send records in order and wait for every acknowledgement.

        Returns one entry per record: ``None`` when the broker acknowledged it,
        the error otherwise, so the caller can mark exactly what was delivered.
        """
        producer = await self.ensure_started()
        futures: list[asyncio.Future[object]] = []
        refused: BaseException | None = None
        for record in records:
            try:
                futures.append(
                    await producer.send(
                        record.topic, record.value, key=record.key, headers=record.headers
                    )
                )
            except Exception as error:  # the rest would go out of order: stop here
                refused = error
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        outcome = [item if isinstance(item, BaseException) else None for item in results]
        if refused is not None:
            outcome.extend([refused] * (len(records) - len(outcome)))
        return outcome

    async def send_and_wait(self, record: OutboundRecord) -> None:
        producer = await self.ensure_started()
        await producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=record.headers
        )

    async def ping(self, timeout: float = 2.0) -> bool:
        """Whether the broker answers a metadata request now."""
        try:
            producer = await asyncio.wait_for(self.ensure_started(), timeout)
            return bool(await asyncio.wait_for(producer.client.force_metadata_update(), timeout))
        except Exception:
            return False

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
