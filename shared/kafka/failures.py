"""The consumer's failure handling: outages waited out, dead letters written and kept.

Two kinds of failure never stop the loop for good. An unavailable database or
broker is waited out with backoff, as long as it lasts, unless the runner is
stopping, in which case the batch is abandoned uncommitted for the next member.
A record that can never be processed goes to ``<topic>.dlq`` with the reason
(and into the service's ``dead_letters`` table), so the partition moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from aiokafka.errors import KafkaError

from shared import metrics
from shared.db.database import is_unavailable
from shared.deadletters.store import DeadLetterEntry, DeadLetterStore
from shared.events import CloudEvent
from shared.kafka.dead_letter import DeadLetter, dead_letter_record, omit_value
from shared.kafka.producer import EventProducer
from shared.logs import get_logger

log = get_logger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class Abandoned(Exception):
    """Stopping while the database or broker is away: leave the batch uncommitted for later."""


class Pacing:
    """The runner's backoff: sleeps that end at once when it is told to stop."""

    def __init__(self, retry_delay: float) -> None:
        self.retry_delay = retry_delay
        self.stopping = asyncio.Event()

    @staticmethod
    def longer(backoff: float) -> float:
        return min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def wait_out(self, error: BaseException, backoff: float, why: str) -> float:
        """Sleep through an outage and return the next backoff; abandon the batch if stopping."""
        if self.stopping.is_set():
            raise Abandoned(why) from error
        await self.sleep(backoff)
        return self.longer(backoff)


class DeadLetterWriter:
    """Writes a dead letter to ``<topic>.dlq`` and keeps it in the service's table."""

    def __init__(
        self,
        *,
        producer: EventProducer,
        store: DeadLetterStore | None,
        group_id: str,
        service: str,
        pacing: Pacing,
    ) -> None:
        self._producer = producer
        self._store = store
        self._group_id = group_id
        self._service = service
        self._pacing = pacing

    async def write(self, letter: DeadLetter, event: CloudEvent | None = None) -> None:
        record = letter.record
        failed_at = datetime.now(UTC)
        outbound = dead_letter_record(letter, group_id=self._group_id, failed_at=failed_at)
        backoff = self._pacing.retry_delay
        while True:
            try:
                await self._producer.send_and_wait(outbound)
                break
            except (KafkaError, OSError) as error:
                if isinstance(error, KafkaError) and not error.retriable and outbound.value:
                    # It can never be sent as it is (too large for the producer or the
                    # broker): send the reason without the value, or the consumer would
                    # stall on this record for good. The value stays on the source topic
                    # at the partition and offset the headers name.
                    log.error("consumer.dlq.value_omitted", error=repr(error))
                    outbound = omit_value(outbound)
                    continue
                log.warning("consumer.dlq.unavailable", error=repr(error), retry_in=backoff)
                backoff = await self._pacing.wait_out(
                    error, backoff, "stopping while the dead-letter topic is unreachable"
                )
        if self._store is not None:
            await self._record(self._store, letter, event, failed_at)
        metrics.DEAD_LETTERED.labels(self._service, record.topic, letter.reason).inc()
        if event is not None:
            metrics.EVENTS_CONSUMED.labels(self._service, event.type, "dead_lettered").inc()
        log.error(
            "consumer.dead_lettered",
            group=self._group_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=letter.reason,
            error=letter.error[:500],
            dead_letter_topic=outbound.topic,
            event_id=event.id if event else None,
            event_type=event.type if event else None,
        )

    async def _record(
        self,
        store: DeadLetterStore,
        letter: DeadLetter,
        event: CloudEvent | None,
        failed_at: datetime,
    ) -> None:
        """Keep the dead letter in the service's table for the operator API.

        An outage is waited out like the dead-letter topic's; any other error is
        logged and the consumer moves on: the record is safe on ``<topic>.dlq``,
        and stalling every later message over the bookkeeping would be worse.
        """
        record = letter.record
        entry = DeadLetterEntry(
            consumer_group=self._group_id,
            topic=str(record.topic),
            partition=int(record.partition),
            offset=int(record.offset),
            reason=letter.reason,
            error=letter.error,
            key=record.key,
            value=record.value or b"",
            headers=list(record.headers or ()),
            dead_lettered_at=failed_at,
            event=event,
        )
        backoff = self._pacing.retry_delay
        while True:
            try:
                await store.record(entry)
                return
            except Exception as error:
                if not is_unavailable(error):
                    log.error(
                        "consumer.dead_letter.unrecorded",
                        group=self._group_id,
                        topic=record.topic,
                        offset=record.offset,
                        error=repr(error),
                    )
                    return
                log.warning("consumer.dead_letter.store_unavailable", error=repr(error))
                backoff = await self._pacing.wait_out(
                    error, backoff, "stopping while the database is away"
                )
