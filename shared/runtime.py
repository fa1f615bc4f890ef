"""The runtime every service process is built around: database, producer, outbox relay, auth.

A service's composition root creates one ``ServiceRuntime``, adds its own
components (consumers, schedulers, dispatchers) and hands it to the app
factory, whose lifespan starts everything in order and stops it in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import MetaData

from shared import faults
from shared.auth.revocation import RevocationListener
from shared.auth.setup import build_verifier
from shared.auth.tokens import TokenVerifier
from shared.db.database import Database
from shared.db.migrations import upgrade
from shared.deadletters.store import DeadLetterStore
from shared.events.catalog.control import CONTROL_TOPIC
from shared.http.idempotency import purge_expired
from shared.kafka.cluster import BrokerWatch
from shared.kafka.producer import EventProducer
from shared.kafka.topics import ensure_topics
from shared.logs import get_logger
from shared.outbox.relay import OutboxRelay
from shared.outbox.writer import Outbox
from shared.settings import ServiceSettings

log = get_logger(__name__)


class Component(Protocol):
    """Anything with a lifetime inside the service process."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


ComponentT = TypeVar("ComponentT", bound=Component)


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        service: str,
        metadata: MetaData,
        migrations: Path,
        topics: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.service = service
        self.source = f"/followthrough/{service}"
        self._metadata = metadata
        self._migrations = migrations
        self._topics = sorted({*topics, settings.topic(CONTROL_TOPIC)})
        self.database = Database(settings.database_url, pool_size=settings.database_pool_size)
        self.producer = EventProducer(settings, client_id=f"followthrough-{service}")
        self.broker = BrokerWatch(settings)
        """Which cluster the broker is: hand it to every consumer, so they rejoin a new one."""
        self.outbox = Outbox(topic_prefix=settings.kafka_topic_prefix)
        self.relay = OutboxRelay(
            database=self.database,
            producer=self.producer,
            outbox_writer=self.outbox,
            service=service,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            retention=timedelta(hours=settings.outbox_retention_hours),
            watch=self.broker,
            replay=timedelta(hours=settings.outbox_replay_hours),
            on_new_cluster=self._create_topics if settings.kafka_create_topics else None,
        )
        self.verifier: TokenVerifier = build_verifier(settings)
        self.dead_letters = DeadLetterStore(self.database)
        """Hand to every ConsumerRunner, so what it dead-letters shows in /v1/dead-letters."""
        self._components: list[Component] = []
        self._background: list[asyncio.Task[None]] = []
        self.revocations = self.add(
            RevocationListener(settings, self.database, self.verifier, broker=self.broker)
        )
        """Every replica follows the control topic itself, so every one refuses revoked tokens."""

    def add(self, component: ComponentT) -> ComponentT:
        self._components.append(component)
        return component

    async def start(self) -> None:
        faults.arm_from_environment(self.settings.environment)
        if self.settings.is_sqlite:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            Path(self.database.url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
        if self.settings.run_migrations:
            await upgrade(self.database, self._migrations, self._metadata)
        # Before the first request: a revoked credential is never accepted, not even at start.
        await self.revocations.load()
        if self.settings.kafka_create_topics and self._topics:
            await self._ensure_topics_once()
        self.broker.start()
        self.relay.start()
        for component in self._components:
            component.start()
        self._background.append(asyncio.create_task(self._purge_idempotency_keys()))
        log.info("service.started", port=self.settings.port)

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        for component in reversed(self._components):
            try:
                await component.stop()
            except Exception as error:
                log.error(
                    "service.component.stop_failed", component=repr(component), error=repr(error)
                )
        await self.relay.stop()
        await self.broker.stop()
        await self.producer.stop()
        await self.database.dispose()
        log.info("service.stopped")

    async def readiness(self) -> dict[str, bool]:
        database_ok = True
        try:
            await asyncio.wait_for(self.database.ping(), 2)
        except Exception:
            database_ok = False
        return {"database": database_ok, "broker": await self.producer.ping()}

    async def _ensure_topics_once(self) -> None:
        """Create topics now if the broker answers, else keep trying in the background."""
        try:
            await asyncio.wait_for(ensure_topics(self.settings, self._topics), 5)
        except Exception as error:
            log.warning("kafka.topics.deferred", error=repr(error))
            self._background.append(asyncio.create_task(self._ensure_topics_later()))

    async def _create_topics(self) -> None:
        """On a new cluster, before the relay publishes there: the topics this service needs."""
        await asyncio.wait_for(ensure_topics(self.settings, self._topics), 15)

    async def _ensure_topics_later(self) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await ensure_topics(self.settings, self._topics)
                return
            except Exception:
                delay = min(delay * 2, 30)

    async def _purge_idempotency_keys(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await purge_expired(self.database)
            await asyncio.sleep(3600)
