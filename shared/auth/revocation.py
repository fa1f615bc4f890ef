"""Revoked credentials: refused by every replica of every service, with no call between services.

The operator CLI publishes ``credential.revoked`` on the ``control`` topic.
Every replica of every service reads that topic itself, all partitions from
the beginning, without a consumer group: each one must hear every
revocation, and a group would hand each record to one replica only (and make
every start wait for a group join). Each revocation goes straight into the
replica's verifier, which checks it on every request, cached credential or
not, and into the service's ``revoked_credentials`` table, which a replica
loads before it serves its first request. So a revocation takes effect
within about a second everywhere, and holds across restarts even after the
topic's retention has dropped the record.

A record on the control topic that is not a readable control event is logged
and skipped: there is no consumer group to dead-letter it for, and it can
never become readable by waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from shared.auth.tokens import TokenVerifier
from shared.clock import Clock, SystemClock
from shared.db.database import Database
from shared.db.tables import revoked_credentials
from shared.events import EventError, parse_event
from shared.events.catalog.control import CONTROL_TOPIC, CredentialRevoked
from shared.kafka.cluster import BrokerWatch
from shared.kafka.config import client_options
from shared.logs import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

FORGET_AFTER = timedelta(days=1)
"""A revocation is forgotten this long after the credential would have expired anyway."""
PURGE_EVERY_SECONDS = 3600.0
PARTITION_CHECK_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 30.0


class RevocationListener:
    """Keeps one process's verifier refusing every revoked credential."""

    def __init__(
        self,
        settings: ServiceSettings,
        database: Database,
        verifier: TokenVerifier,
        *,
        clock: Clock | None = None,
        broker: BrokerWatch | None = None,
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._db = database
        self._verifier = verifier
        self._clock = clock or SystemClock()
        self._topic = settings.topic(CONTROL_TOPIC)
        self._revoked: set[str] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.caught_up = asyncio.Event()
        """Set once every partition has been read to its end at least once (tests wait on it)."""

    @property
    def revoked(self) -> frozenset[str]:
        return frozenset(self._revoked)

    async def load(self) -> None:
        """Read the revocations kept in the database (called at start, before serving)."""
        cutoff = self._clock.now() - FORGET_AFTER
        async with self._db.transaction() as session:
            await session.execute(
                delete(revoked_credentials).where(revoked_credentials.c.expires_at < cutoff)
            )
            ids = (await session.execute(select(revoked_credentials.c.token_id))).scalars().all()
        self._revoked.update(ids)
        self._verifier.set_revoked(self._revoked)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="revocation-listener")

    async def stop(self) -> None:
        """Cancel at once: nothing here needs finishing (rows are idempotent, no offsets kept)."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            consumer = AIOKafkaConsumer(
                **client_options(self._settings),
                client_id=f"followthrough-revocations-{self._topic}",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=500,
            )
            try:
                await consumer.start()
                await self._follow(consumer)
                backoff = 0.2
            except Exception as error:
                log.warning("revocations.listener.failed", error=repr(error), retry_in=backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        checked = -PARTITION_CHECK_SECONDS
        purged = time.monotonic()
        cluster = self._broker.cluster_id if self._broker is not None else None
        while not self._stopping.is_set():
            if self._broker is not None:
                if self._broker.replaced(cluster):
                    # The positions belonged to the old cluster's logs: read the new one whole.
                    log.warning("revocations.cluster.changed", current=self._broker.cluster_id)
                    self._positions.clear()
                    return
                cluster = cluster or self._broker.cluster_id
            if time.monotonic() - checked >= PARTITION_CHECK_SECONDS:
                checked = time.monotonic()
                await self._assign(consumer)
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                await self._apply(records)
                self._positions[tp] = records[-1].offset + 1
            if not self.caught_up.is_set() and await self._at_end(consumer):
                self.caught_up.set()
            if time.monotonic() - purged >= PURGE_EVERY_SECONDS:
                purged = time.monotonic()
                await self.load()

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Every partition of the topic, each from where this process left it (else the start)."""
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(self._topic) or set()
        wanted = {TopicPartition(self._topic, p) for p in partitions}
        if not wanted or wanted == consumer.assignment():
            return
        consumer.assign(sorted(wanted))
        for tp in wanted:
            position = self._positions.get(tp)
            if position is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)

    async def _at_end(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether every partition has been read to the high watermark of its last fetch."""
        assigned = consumer.assignment()
        if not assigned:
            return False
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None or await consumer.position(tp) < highwater:
                return False
        return True

    async def _apply(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        rows: list[dict[str, Any]] = []
        for record in records:
            try:
                event = parse_event(record.value or b"")
            except EventError as error:
                log.error(
                    "revocations.record.unreadable",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    reason=error.reason,
                )
                continue
            if not isinstance(event, CredentialRevoked):
                continue
            if event.data.token_id not in self._revoked:
                log.info(
                    "credential.revoked",
                    token_id=event.data.token_id,
                    tenant_id=event.tenantid,
                    correlation_id=event.correlationid,
                    event_id=event.id,
                )
            self._revoked.add(event.data.token_id)
            rows.append(
                {
                    "token_id": event.data.token_id,
                    "tenant_id": event.tenantid,
                    "expires_at": event.data.expires_at,
                    "revoked_at": event.time,
                    "reason": event.data.reason,
                }
            )
        if not rows:
            return
        # In force in this process before anything else can fail.
        self._verifier.set_revoked(self._revoked)
        try:
            insert = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
            async with self._db.transaction() as session:
                await session.execute(
                    insert(revoked_credentials).values(rows).on_conflict_do_nothing()
                )
        except Exception as error:
            # Every replica writes the same rows and re-reads the topic at start: the
            # next one to succeed keeps them.
            log.warning("revocations.store.failed", error=repr(error), revocations=len(rows))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
