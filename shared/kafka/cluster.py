"""Which Kafka cluster the bootstrap address leads to, watched for as long as the process runs.

Kafka names every cluster with an id, in every metadata response (v2+). On a
real Kafka cluster that id never changes; it changes when the address now
leads to a different cluster: a memory-only development broker started again
empty, or a cluster rebuilt from scratch. What the old one held (published
events, group offsets) is gone, so the outbox relay re-publishes its recent
rows and the consumers rejoin from the start of the new logs.

The watch polls with one metadata request per interval (a few bytes on an
open connection) and reports ``None`` as soon as the broker stops answering,
so the relay pauses rather than publish into a cluster it has not recognised.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka.config import client_options
from shared.logs import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

REQUEST_TIMEOUT_MS = 5_000


class BrokerWatch:
    def __init__(self, settings: ServiceSettings, *, interval: float | None = None) -> None:
        self._settings = settings
        self._interval = interval if interval is not None else settings.kafka_cluster_check_seconds
        self._admin: AIOKafkaAdminClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._asking = asyncio.Lock()  # the watch's own poll and a relay's may overlap
        self.cluster_id: str | None = None
        """The id of the cluster the broker answered for last; None while it does not answer."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="kafka-cluster-watch")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    def replaced(self, since: str | None) -> bool:
        """Whether the broker now answers as another cluster than ``since`` (None: not known)."""
        return since is not None and self.cluster_id is not None and self.cluster_id != since

    async def refresh(self) -> str | None:
        """Ask the broker now; the answer also becomes ``cluster_id``."""
        async with self._asking:
            return await self._ask()

    async def _ask(self) -> str | None:
        try:
            admin = await self._client()
            described = await asyncio.wait_for(
                admin.describe_cluster(), REQUEST_TIMEOUT_MS / 1000 + 1
            )
            current = str(described["cluster_id"]) if described.get("cluster_id") else None
        except Exception as error:
            if self.cluster_id is not None:
                log.warning("kafka.cluster.unreachable", error=repr(error))
            await self._close()
            current = None
        if current is not None and self.cluster_id is not None and current != self.cluster_id:
            log.warning("kafka.cluster.changed", previous=self.cluster_id, current=current)
        self.cluster_id = current
        return current

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def _client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                **client_options(self._settings),
                client_id="followthrough-cluster-watch",
                request_timeout_ms=REQUEST_TIMEOUT_MS,
            )
            try:
                await admin.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._admin = admin
        return self._admin

    async def _close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
