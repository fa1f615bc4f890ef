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
  from the last committed offsets, after a backoff;
* when the broker turns out to be another cluster (a memory-only broker
  restarted empty), the client is started afresh: it joins the group there and
  reads from that cluster's commits, else from the beginning, never from a
  position that belonged to the old logs. A client keeps fetching from its
  positions at whatever answers on the address, so a batch fetched while the
  watch does not know the cluster is handled only once the watch confirms it
  is still the one this client joined; while the broker does not answer, the
  batch is put back (the client seeks to its first records) and fetched again.

This module is the loop and its commits; a batch's handling is in
``batches.py``, outages and dead letters in ``failures.py``, and what a
handler sees (``ConsumedEvent``, ``event_scope``) in ``consumed.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from shared import faults, metrics, tracing
from shared.deadletters.store import DeadLetterStore
from shared.kafka.batches import BatchProcessor
from shared.kafka.cluster import BrokerWatch
from shared.kafka.config import client_options
from shared.kafka.consumed import EventHandler
from shared.kafka.dead_letter import REASONS
from shared.kafka.failures import Abandoned, DeadLetterWriter, Pacing
from shared.kafka.lag import PartitionLag
from shared.kafka.producer import EventProducer
from shared.logs import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

COMMIT_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0


class _CommitStuck(Exception):
    """The broker kept refusing a commit as retriable; only a fresh client gets past it."""


QUIET_TOPIC_FETCH_WAIT_MS = 500
"""The fetch wait of consumers of rare, unhurried events (erasures on the privacy topic).

Kafka's own default. Each idle consumer at the hot paths' short wait sends a
fetch every few milliseconds; on two cores at 100 events/s the idle privacy
consumers alone cost more CPU than some whole services (docs/performance.md).
"""


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
        broker: BrokerWatch | None = None,
        fetch_max_wait_ms: int | None = None,
    ) -> None:
        self._settings = settings
        self._fetch_max_wait_ms = fetch_max_wait_ms or settings.kafka_fetch_max_wait_ms
        self._broker = broker
        self._cluster_id: str | None = None
        self._topics = list(topics)
        self._group_id = group_id
        self._service = service
        self._pacing = Pacing(retry_delay)
        if tracing.enabled:  # a span per batch and per event, continuing the records' traces
            from shared.tracing.consumer import traced

            handler = traced(handler, group_id=group_id, service=service)
        self._batches = BatchProcessor(
            handler=handler,
            dead_letters=DeadLetterWriter(
                producer=producer,
                store=dead_letters,
                group_id=group_id,
                service=service,
                pacing=self._pacing,
            ),
            pacing=self._pacing,
            group_id=group_id,
            service=service,
            max_event_bytes=max_event_bytes,
            handler_retries=settings.consumer_handler_retries,
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = asyncio.Lock()
        self._lag = PartitionLag(service, group_id)
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
        self._pacing.stopping.set()
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
        backoff = self._pacing.retry_delay
        while not self._pacing.stopping.is_set():
            try:
                consumer = await self._start_consumer()
            except Exception as error:
                log.warning(
                    "consumer.start.failed",
                    group=self._group_id,
                    error=repr(error),
                    retry_in=backoff,
                )
                await self._pacing.sleep(backoff)
                backoff = Pacing.longer(backoff)
                continue
            crashed = False
            try:
                self.running.set()
                await self._consume(consumer)
            except Abandoned as error:
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
                try:
                    # Leaving the group waits for a coordinator; a broker that is away
                    # would hold the restart for as long as it is away.
                    await asyncio.wait_for(consumer.stop(), STOP_TIMEOUT_SECONDS)
                except Exception as error:
                    log.warning("consumer.stop.abandoned", group=self._group_id, error=repr(error))
                log.info("consumer.stopped", group=self._group_id)
            if crashed:
                await self._pacing.sleep(backoff)
                backoff = Pacing.longer(backoff)
            else:
                backoff = self._pacing.retry_delay

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=self._group_id,
            client_id=f"{self._service}-{self._group_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._settings.consumer_max_batch,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
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
        self._cluster_id = self._broker.cluster_id if self._broker is not None else None
        log.info("consumer.started", group=self._group_id, topics=self._topics)
        return consumer

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        backoff = self._pacing.retry_delay
        while not self._pacing.stopping.is_set():
            if self._on_another_cluster():
                return
            try:
                batches = await consumer.getmany(timeout_ms=250)
            except KafkaError as error:
                log.warning("consumer.fetch.failed", group=self._group_id, error=str(error))
                await self._pacing.sleep(backoff)
                backoff = Pacing.longer(backoff)
                continue
            backoff = self._pacing.retry_delay
            if batches:
                cluster = await self._cluster_fetched_from()
                if cluster is _Cluster.UNKNOWN:
                    _put_back(consumer, batches)
                    await self._pacing.sleep(backoff)
                    backoff = Pacing.longer(backoff)
                    continue
                if cluster is _Cluster.ANOTHER:
                    return  # uncommitted: a fresh client reads them from the commits there

                async with self._in_flight:
                    offsets: dict[TopicPartition, int] = {}
                    try:
                        for tp, records in batches.items():
                            if records:
                                await self._batches.process(records)
                                offsets[tp] = records[-1].offset + 1
                    except Abandoned:
                        await self._commit(consumer, offsets)  # what is done stays done
                        raise
                    if faults.armed:
                        await faults.reached("consumer.after_handler")
                    await self._commit(consumer, offsets)
            await self._lag.observe(consumer)

    def _on_another_cluster(self) -> bool:
        """Whether the broker is another cluster than the one this client joined."""
        if self._cluster_now() is not _Cluster.ANOTHER:
            return False
        log.warning(
            "consumer.cluster.changed",
            group=self._group_id,
            previous=self._cluster_id,
            current=self._broker.cluster_id if self._broker is not None else None,
        )
        return True

    def _cluster_now(self) -> _Cluster:
        """The broker's cluster, as the watch last saw it, against the one this client joined."""
        if self._broker is None:
            return _Cluster.JOINED
        if self._cluster_id is None:  # started before the watch knew: it is this one
            self._cluster_id = self._broker.cluster_id
            return _Cluster.JOINED
        if self._broker.cluster_id is None:
            return _Cluster.UNKNOWN
        return _Cluster.JOINED if not self._broker.replaced(self._cluster_id) else _Cluster.ANOTHER

    async def _cluster_fetched_from(self) -> _Cluster:
        """Which cluster a batch just fetched comes from, as far as the watch can tell.

        A broker that went away and came back empty is answered at the old
        positions: the first records of its new logs would be skipped. The watch
        lost the broker when it went, so an unknown cluster is asked about now,
        before anything is handled; a known, unchanged one costs nothing.
        """
        cluster = self._cluster_now()
        if cluster is _Cluster.UNKNOWN and self._broker is not None:
            await self._broker.refresh()
            cluster = self._cluster_now()
        if cluster is not _Cluster.JOINED:
            log.warning(
                "consumer.cluster.unconfirmed",
                group=self._group_id,
                joined=self._cluster_id,
                current=self._broker.cluster_id if self._broker is not None else None,
            )
        return cluster

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


class _Cluster(enum.Enum):
    JOINED = "joined"
    ANOTHER = "another"
    UNKNOWN = "unknown"  # the broker does not answer: nothing to judge the batch by yet


def _put_back(consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]]) -> None:
    """Rewind to the batch's first records, so they are fetched again, not skipped."""
    for tp, records in batches.items():
        if records:
            consumer.seek(tp, records[0].offset)


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
