"""The consumer runner: the one loop every service uses to handle Kafka events.

Guarantees, in order of importance:

* an offset is committed only after the handler returned, i.e. after its work
  is durable; a crash before the commit means redelivery, which handlers
  absorb by deduplicating on the event id;
* a message that cannot be processed (not JSON, unknown type, invalid data,
  oversize, or a handler that keeps failing on it) goes to ``<topic>.dlq``
  with the original bytes, headers and the reason, and the loop moves on;
* an unavailable database or broker is not the message's fault: the batch is
  retried with backoff for as long as it takes, never dead-lettered;
* partitions are only handed to another member after the batch in flight has
  been committed (the rebalance listener waits on the same lock);
* the loop itself never dies quietly: an unexpected error restarts the client
  from the last committed offsets, after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from shared import faults, metrics
from shared.context import bound
from shared.db.database import is_unavailable
from shared.deadletters.store import DeadLetterEntry, DeadLetterStore
from shared.events import CloudEvent, EventError, parse_event
from shared.kafka.config import client_options
from shared.kafka.dead_letter import REASONS, DeadLetter, dead_letter_record, omit_value
from shared.kafka.lag import PartitionLag
from shared.kafka.producer import EventProducer
from shared.logs import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

MAX_BACKOFF_SECONDS = 30.0
COMMIT_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class ConsumedEvent:
    event: CloudEvent
    record: ConsumerRecord[bytes, bytes]

    @property
    def topic(self) -> str:
        return str(self.record.topic)

    @property
    def partition(self) -> int:
        return int(self.record.partition)

    @property
    def offset(self) -> int:
        return int(self.record.offset)


EventHandler = Callable[[Sequence[ConsumedEvent]], Awaitable[None]]
"""Handles one partition's events, in order; returns only once its work is durable."""


def event_scope(event: CloudEvent) -> contextlib.AbstractContextManager[None]:
    """Bind an event's ids to the log context; handlers of batches use it per event."""
    return bound(correlation_id=event.correlationid, tenant_id=event.tenantid, event_id=event.id)


class PermanentHandlerError(Exception):
    """Raised by a handler for an event that can never succeed: dead-letter it without retrying."""


class _CommitStuck(Exception):
    """The broker kept refusing a commit as retriable; only a fresh client gets past it."""


class _Abandoned(Exception):
    """Stopping while the database or broker is away: leave the batch uncommitted for later."""


class ConsumerRunner:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        handler: EventHandler,
        producer: EventProducer,
        service: str,
        max_event_bytes: int = 1_048_576,
        retry_delay: float = 0.2,
        dead_letters: DeadLetterStore | None = None,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._group_id = group_id
        self._handler = handler
        self._producer = producer
        self._service = service
        self._max_event_bytes = max_event_bytes
        self._retry_delay = retry_delay
        self._dead_letters = dead_letters
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._in_flight = asyncio.Lock()
        self._lag = PartitionLag(service)
        self.running = asyncio.Event()
        # Every series exists from the start at 0: increase() over a series that appears
        # at 1 sees no increase, so the first dead letter would never alert.
        for kind in ("transient", "event"):
            metrics.HANDLER_ERRORS.labels(service, kind)
        for topic in self._topics:
            for reason in REASONS:
                metrics.DEAD_LETTERED.labels(service, topic, reason)

    @property
    def group_id(self) -> str:
        return self._group_id

    @property
    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member holds now (empty while joining or rebalancing)."""
        consumer = self._consumer
        return frozenset(consumer.assignment()) if consumer is not None else frozenset()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self._group_id}")

    async def stop(self, timeout: float = 15.0) -> None:
        """Finish the batch in flight, commit it, and leave the group."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("consumer.stop.timeout", group=self._group_id, timeout=timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def lag(self) -> dict[TopicPartition, int]:
        """Records between the position and the high watermark, per assigned partition.

        As last observed (at most about a second old); a partition whose high
        watermark is not known yet (nothing fetched since assignment) is absent.
        """
        return self._lag.snapshot()

    async def _run(self) -> None:
        backoff = self._retry_delay
        while not self._stopping.is_set():
            try:
                consumer = await self._start_consumer()
            except Exception as error:
                log.warning(
                    "consumer.start.failed",
                    group=self._group_id,
                    error=repr(error),
                    retry_in=backoff,
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            crashed = False
            try:
                self.running.set()
                await self._consume(consumer)
            except _Abandoned as error:
                log.warning("consumer.batch.abandoned", group=self._group_id, error=repr(error))
            except Exception as error:
                # A bug, or a broker error the client does not retry. Never die
                # quietly: start a fresh client, which resumes from the last commit.
                crashed = True
                log.error(
                    "consumer.crashed",
                    group=self._group_id,
                    error=repr(error),
                    retry_in=backoff,
                    exc_info=error,
                )
            finally:
                self.running.clear()
                self._consumer = None
                self._lag.forget()
                with contextlib.suppress(Exception):
                    await consumer.stop()
                log.info("consumer.stopped", group=self._group_id)
            if crashed:
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            else:
                backoff = self._retry_delay

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=self._group_id,
            client_id=f"{self._service}-{self._group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._settings.consumer_max_batch,
            fetch_max_wait_ms=100,
            session_timeout_ms=self._settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
            rebalance_timeout_ms=30_000,
        )
        consumer.subscribe(self._topics, listener=_WaitForInFlight(self))
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        self._consumer = consumer
        log.info("consumer.started", group=self._group_id, topics=self._topics)
        return consumer

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        backoff = self._retry_delay
        while not self._stopping.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=250)
            except KafkaError as error:
                log.warning("consumer.fetch.failed", group=self._group_id, error=str(error))
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = self._retry_delay
            if batches:
                async with self._in_flight:
                    offsets: dict[TopicPartition, int] = {}
                    try:
                        for tp, records in batches.items():
                            if records:
                                await self._process_partition(records)
                                offsets[tp] = records[-1].offset + 1
                    except _Abandoned:
                        await self._commit(consumer, offsets)  # what is done stays done
                        raise
                    if faults.armed:
                        await faults.reached("consumer.after_handler")
                    await self._commit(consumer, offsets)
            await self._lag.observe(consumer)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await asyncio.wait_for(consumer.commit(offsets), COMMIT_TIMEOUT_SECONDS)
        except (CommitFailedError, IllegalStateError) as error:
            # The partitions moved to another member; it re-reads from the last
            # commit and our handlers' dedupe makes that harmless.
            log.warning("consumer.commit.lost", group=self._group_id, error=str(error))
        except TimeoutError as error:
            # aiokafka retries a commit the broker refuses as retriable (a partition it
            # no longer knows: a topic recreated smaller, a memory-only broker restarted)
            # without end, and this consumer would stall for good. A fresh client rejoins
            # with current metadata and re-reads from the last commit; dedupe absorbs it.
            raise _CommitStuck(f"commit not done after {COMMIT_TIMEOUT_SECONDS:g} s") from error

    async def _process_partition(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        accepted: list[ConsumedEvent] = []
        for record in records:
            item = self._decode(record)
            if isinstance(item, DeadLetter):
                await self._dead_letter(item)
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
        backoff = self._retry_delay
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
                if self._stopping.is_set():
                    raise _Abandoned(
                        "stopping while the handler's infrastructure is away"
                    ) from error
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _process_single(self, item: ConsumedEvent) -> None:
        attempts = self._settings.consumer_handler_retries + 1
        error: Exception | None = None
        for attempt in range(attempts):
            error = await self._attempt_forever([item])
            if error is None:
                return
            if isinstance(error, PermanentHandlerError):
                break
            if attempt + 1 < attempts:
                await self._sleep(self._retry_delay * (2**attempt))
        await self._dead_letter(DeadLetter(item.record, "handler_failed", repr(error)), item.event)

    async def _call(self, events: Sequence[ConsumedEvent]) -> None:
        if len(events) == 1:
            with event_scope(events[0].event):
                await self._handler(events)
        else:
            await self._handler(events)
        for item in events:
            metrics.EVENTS_CONSUMED.labels(self._service, item.event.type, "handled").inc()

    async def _dead_letter(self, letter: DeadLetter, event: CloudEvent | None = None) -> None:
        record = letter.record
        failed_at = datetime.now(UTC)
        outbound = dead_letter_record(letter, group_id=self._group_id, failed_at=failed_at)
        backoff = self._retry_delay
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
                if self._stopping.is_set():
                    raise _Abandoned(
                        "stopping while the dead-letter topic is unreachable"
                    ) from error
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        if self._dead_letters is not None:
            await self._record(letter, event, failed_at)
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
        self, letter: DeadLetter, event: CloudEvent | None, failed_at: datetime
    ) -> None:
        """Keep the dead letter in the service's table for the operator API.

        An outage is waited out like the dead-letter topic's; any other error is
        logged and the consumer moves on: the record is safe on ``<topic>.dlq``,
        and stalling every later message over the bookkeeping would be worse.
        """
        assert self._dead_letters is not None
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
        backoff = self._retry_delay
        while True:
            try:
                await self._dead_letters.record(entry)
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
                if self._stopping.is_set():
                    raise _Abandoned("stopping while the database is away") from error
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the runner is told to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


class _WaitForInFlight(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hold a rebalance until the batch in flight has been handled and committed."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._runner._in_flight:
            self._runner._lag.forget(set(revoked))
            log.info(
                "consumer.partitions.revoked",
                group=self._runner.group_id,
                partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in revoked),
            )

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._runner._lag.refresh_soon()
        log.info(
            "consumer.partitions.assigned",
            group=self._runner.group_id,
            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
        )
