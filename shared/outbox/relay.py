"""The outbox relay: publishes committed outbox rows to Kafka in commit order.

One relay per service database is active at a time (database leadership), so
rows go out in id order and a goal's events keep their order on its
partition. A row is marked sent only after the broker acknowledged it; a crash
between the two means the row is published again, which consumers absorb by
event id. While the broker is down the rows simply wait, and the relay backs
off and keeps trying.

Published rows are kept for a replay window. When the broker address turns
out to lead to another cluster than the one this relay last published to (a
memory-only development broker restarted empty; on a real Kafka cluster this
does not happen by accident), everything published within the window is
queued again, before anything newer, so what the old cluster held and lost
reaches consumers from the new one. Consumers drop what they already handled
by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiokafka.errors import KafkaConnectionError, KafkaError
from sqlalchemy import Connection, Row, Select, bindparam, delete, func, select, update

from shared import faults, metrics
from shared import tracing as _tracing  # `tracing` below means debug lines
from shared.db.database import Database, is_unavailable
from shared.db.leader import Leadership
from shared.db.tables import broker_clusters, outbox
from shared.events.envelope import utc_now
from shared.kafka.cluster import BrokerWatch
from shared.kafka.producer import EventProducer, OutboundRecord
from shared.logs import get_logger
from shared.outbox.writer import Outbox

log = get_logger(__name__)
_stdlib_log = logging.getLogger(__name__)
RowT = TypeVar("RowT")
_TRACE_COLUMNS = (outbox.c.traceparent, outbox.c.tracestate)

INITIAL_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 10.0
GAUGE_REFRESH_SECONDS = 5.0
PURGE_EVERY_SECONDS = 600.0

_PENDING = (
    select(
        outbox.c.id,
        outbox.c.event_id,
        outbox.c.topic,
        outbox.c.key,
        outbox.c.payload,
        outbox.c.headers,
        outbox.c.event_type,
    )
    .where(outbox.c.sent_at.is_(None))
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)
_PENDING_TRACED = _PENDING.add_columns(*_TRACE_COLUMNS)  # while tracing is on
_MARK_SENT = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(sent_at=bindparam("published_at"))
)


class OutboxRelay:
    def __init__(
        self,
        *,
        database: Database,
        producer: EventProducer,
        outbox_writer: Outbox,
        service: str,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(hours=72),
        gauge_seconds: float = GAUGE_REFRESH_SECONDS,
        watch: BrokerWatch | None = None,
        replay: timedelta = timedelta(hours=24),
        on_new_cluster: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``watch`` tells which cluster the broker is (None: never replay); ``on_new_cluster``
        runs before a replay (the service creates its topics there)."""
        self._database = database
        self._producer = producer
        self._signal = outbox_writer.committed
        self._service = service
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._retention = retention
        self._gauge_seconds = gauge_seconds
        self._watch = watch
        self._replay = replay
        self._on_new_cluster = on_new_cluster
        self._cluster_id: str | None = None
        self._recheck_cluster = True
        metrics.OUTBOX_REPLAYED.labels(service)  # the series exists from the start, at 0
        self._leadership = Leadership(database, f"{service}:outbox-relay")
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._purged_at = 0.0
        self.idle = asyncio.Event()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"outbox-relay:{self._service}"),
            asyncio.create_task(self._watch_backlog(), name=f"outbox-gauges:{self._service}"),
        ]

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._signal.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        await self._leadership.release()

    async def _run(self) -> None:
        backoff = INITIAL_BACKOFF_SECONDS
        while not self._stopping.is_set():
            drained, failed = True, False
            try:
                if await self._leadership.acquire():
                    await self.follow_cluster()
                    drained = await self.publish_pending()
                    await self._purge()
                backoff = INITIAL_BACKOFF_SECONDS
            except Exception as error:
                failed = True
                self._recheck_cluster = True  # the broker may have come back as another one
                self.idle.clear()
                level = "warning" if _is_transient(error) else "error"
                getattr(log, level)("outbox.relay.failed", error=repr(error), retry_in=backoff)
            if failed:
                # A backoff, not a poll: commits do not cut it short, or a busy
                # service would hammer a broker that is down.
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            elif drained:
                self.idle.set()
                await self._wait(self._poll_seconds)

    async def _wait(self, seconds: float) -> None:
        """Until a transaction with events commits, or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signal.wait(), seconds)
        self._signal.clear()

    async def _sleep(self, seconds: float) -> None:
        """``seconds``, unless the relay is told to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def follow_cluster(self) -> None:
        """Make sure the broker is the cluster this relay publishes to, replaying if it is new.

        Raises while the broker does not answer, so nothing is published into a
        cluster not yet recognised (it could be a new, empty one).
        """
        if self._watch is None:
            return
        current = await self._watch.refresh() if self._recheck_cluster else self._watch.cluster_id
        if current is None:
            current = await self._watch.refresh()
        if current is None:
            raise KafkaConnectionError("the broker does not answer: cluster unknown")
        self._recheck_cluster = False
        if current != self._cluster_id:
            await self._adopt_cluster(current)

    async def _adopt_cluster(self, current: str) -> None:
        async with self._database.reader() as session:
            known = (
                await session.execute(
                    select(broker_clusters.c.cluster_id).where(
                        broker_clusters.c.relay == self._service
                    )
                )
            ).scalar_one_or_none()
        if known is not None and known != current:
            await self._replay_for(current, previous=known)
        elif known is None:
            async with self._database.transaction() as session:
                await session.execute(
                    broker_clusters.insert().values(
                        relay=self._service, cluster_id=current, seen_at=utc_now()
                    )
                )
            log.info("outbox.cluster.recorded", cluster_id=current)
        self._cluster_id = current

    async def _replay_for(self, current: str, *, previous: str) -> None:
        """Queue again what was published within the window, and remember the new cluster.

        Both in one transaction: a crash in between replays again at the next
        start, which costs duplicates only. The topics are created first and the
        producer restarted, so no record goes by the old cluster's partition map.
        """
        if self._on_new_cluster is not None:
            await self._on_new_cluster()
        await self._producer.stop()
        async with self._database.transaction() as session:
            queued = await session.execute(
                update(outbox)
                .where(outbox.c.sent_at >= utc_now() - self._replay)
                .values(sent_at=None)
            )
            await session.execute(
                update(broker_clusters)
                .where(broker_clusters.c.relay == self._service)
                .values(cluster_id=current, seen_at=utc_now())
            )
        count = int(getattr(queued, "rowcount", 0) or 0)
        metrics.OUTBOX_REPLAYED.labels(self._service).inc(count)
        log.warning(
            "outbox.replaying",
            previous_cluster=previous,
            cluster_id=current,
            events=count,
            window_hours=self._replay.total_seconds() / 3600,
        )

    async def publish_pending(self) -> bool:
        """Publish up to one batch; True when nothing is left to send."""
        pending = _PENDING_TRACED if _tracing.enabled else _PENDING
        rows = await self._database.run_core(
            functools.partial(_read_pending, pending, self._batch_size), write=False
        )
        if not rows:
            return True
        self.idle.clear()
        records = [_record(row) for row in rows]
        if _tracing.enabled:  # a span per row, continuing its trace, and into its headers
            from shared.tracing.outbox import publish

            results = await publish(self._producer, self._service, rows, records)
        else:
            results = await self._producer.send_many(records)
        sent = _acknowledged_prefix(rows, results)
        if sent and faults.armed:
            await faults.reached("relay.after_publish")
        if sent:
            await self._database.run_core(
                functools.partial(_mark_sent, [row.id for row in sent], utc_now()), write=True
            )
            tracing = _stdlib_log.isEnabledFor(logging.DEBUG)
            for row in sent:
                metrics.EVENTS_PRODUCED.labels(self._service, row.event_type).inc()
                if tracing:  # one line per event only when asked for: it doubles the volume
                    log.debug(
                        "outbox.published",
                        event_id=row.event_id,
                        event_type=row.event_type,
                        topic=row.topic,
                        correlation_id=(row.headers or {}).get("correlation-id"),
                    )
        if len(sent) < len(rows):
            failure = next(error for error in results if error is not None)
            raise failure
        return len(rows) < self._batch_size

    async def _purge(self) -> None:
        """Delete rows sent longer ago than the retention (by the leader, now and then)."""
        now = time.monotonic()
        if now - self._purged_at < PURGE_EVERY_SECONDS:
            return
        self._purged_at = now
        async with self._database.transaction() as session:
            await session.execute(
                delete(outbox).where(outbox.c.sent_at < utc_now() - self._retention)
            )

    async def _watch_backlog(self) -> None:
        """Keep the backlog gauges current on a clock of their own.

        They matter most while the broker is away, when a publishing round can
        wait long for acknowledgements; so they do not wait for the rounds.
        """
        while not self._stopping.is_set():
            await self._refresh_gauges()
            await self._sleep(self._gauge_seconds)

    async def _refresh_gauges(self) -> None:
        """Backlog and age of the oldest unsent row, from the database (every replica reports)."""
        try:
            async with self._database.reader() as session:
                count, oldest = (
                    await session.execute(
                        select(func.count(), func.min(outbox.c.created_at)).where(
                            outbox.c.sent_at.is_(None)
                        )
                    )
                ).one()
        except Exception as error:
            log.warning("outbox.gauges.failed", error=repr(error))
            return
        metrics.OUTBOX_BACKLOG.labels(self._service).set(count)
        age = 0.0
        if oldest is not None:
            age = max(0.0, (utc_now() - oldest).total_seconds())
        metrics.OUTBOX_OLDEST_AGE.labels(self._service).set(age)


def _read_pending(statement: Select[Any], limit: int, connection: Connection) -> list[Row[Any]]:
    return list(connection.execute(statement, {"limit": limit}).all())


def _mark_sent(ids: list[int], published_at: datetime, connection: Connection) -> None:
    connection.execute(_MARK_SENT, {"ids": ids, "published_at": published_at})


def _record(row: Row[*tuple[Any, ...]]) -> OutboundRecord:
    headers = [(name, str(value).encode()) for name, value in (row.headers or {}).items()]
    return OutboundRecord(
        topic=row.topic,
        value=row.payload,
        key=row.key.encode() if row.key else None,
        headers=headers,
    )


def _acknowledged_prefix(
    rows: Sequence[RowT], results: Sequence[BaseException | None]
) -> list[RowT]:
    """Rows up to the first failure; marking a later row past a waiting one would reorder."""
    sent: list[RowT] = []
    for row, error in zip(rows, results, strict=True):
        if error is not None:
            break
        sent.append(row)
    return sent


def _is_transient(error: BaseException) -> bool:
    return is_unavailable(error) or isinstance(error, KafkaError)
