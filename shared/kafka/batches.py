"""One partition's batch: decode it, hand it to the handler, and find the event at fault.

A record that is not a valid event never reaches the handler. The rest go to
the handler together; an outage is retried for as long as it lasts, while a
failure of the events' own makes the batch run again one event at a time, so
only the event that keeps failing is dead-lettered and its neighbours are not.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError

from shared import metrics
from shared.db.database import is_unavailable
from shared.events import EventError, parse_event
from shared.kafka.consumed import ConsumedEvent, EventHandler, PermanentHandlerError, event_scope
from shared.kafka.dead_letter import DeadLetter
from shared.kafka.failures import DeadLetterWriter, Pacing
from shared.logs import get_logger

log = get_logger(__name__)


class BatchProcessor:
    def __init__(
        self,
        *,
        handler: EventHandler,
        dead_letters: DeadLetterWriter,
        pacing: Pacing,
        group_id: str,
        service: str,
        max_event_bytes: int,
        handler_retries: int,
    ) -> None:
        self._handler = handler
        self._dead_letters = dead_letters
        self._pacing = pacing
        self._group_id = group_id
        self._service = service
        self._max_event_bytes = max_event_bytes
        self._handler_retries = handler_retries

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle one partition's records; returns once each is handled or dead-lettered."""
        accepted: list[ConsumedEvent] = []
        for record in records:
            item = self._decode(record)
            if isinstance(item, DeadLetter):
                await self._dead_letters.write(item)
            else:
                accepted.append(item)
        if not accepted:
            return
        if await self._attempt_forever(accepted) is None:
            return
        # Something in the batch fails for reasons of its own: find it, one event at a time.
        for single in accepted:
            await self._process_single(single)

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> ConsumedEvent | DeadLetter:
        value = record.value or b""
        if len(value) > self._max_event_bytes:
            return DeadLetter(record, "oversize", f"{len(value)} bytes > {self._max_event_bytes}")
        try:
            event = parse_event(value)
        except EventError as error:
            return DeadLetter(record, error.reason, str(error))
        return ConsumedEvent(event, record)

    async def _attempt_forever(self, events: Sequence[ConsumedEvent]) -> Exception | None:
        """Run the handler, retrying infrastructure outages without limit.

        Returns the error when the failure is about the events themselves.
        """
        backoff = self._pacing.retry_delay
        while True:
            try:
                await self._call(events)
                return None
            except Exception as error:
                if not is_unavailable(error) and not isinstance(error, KafkaError):
                    metrics.HANDLER_ERRORS.labels(self._service, "event").inc()
                    log.warning(
                        "consumer.handler.failed",
                        group=self._group_id,
                        events=len(events),
                        error=repr(error),
                    )
                    return error
                metrics.HANDLER_ERRORS.labels(self._service, "transient").inc()
                log.warning(
                    "consumer.handler.unavailable",
                    group=self._group_id,
                    error=repr(error),
                    retry_in=backoff,
                )
                backoff = await self._pacing.wait_out(
                    error, backoff, "stopping while the handler's infrastructure is away"
                )

    async def _process_single(self, item: ConsumedEvent) -> None:
        attempts = self._handler_retries + 1
        error: Exception | None = None
        for attempt in range(attempts):
            error = await self._attempt_forever([item])
            if error is None:
                return
            if isinstance(error, PermanentHandlerError):
                break
            if attempt + 1 < attempts:
                await self._pacing.sleep(self._pacing.retry_delay * (2**attempt))
        await self._dead_letters.write(
            DeadLetter(item.record, "handler_failed", repr(error)), item.event
        )

    async def _call(self, events: Sequence[ConsumedEvent]) -> None:
        if len(events) == 1:
            with event_scope(events[0].event):
                await self._handler(events)
        else:
            await self._handler(events)
        for item in events:
            metrics.EVENTS_CONSUMED.labels(self._service, item.event.type, "handled").inc()
