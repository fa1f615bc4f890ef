"""The delivery worker: leases due deliveries from the database queue and attempts them.

Deliveries run from the database, never inside the Kafka handler, so a slow
endpoint cannot hold up intake. Each attempt's outcome, the delivery's new
state and (when it is final) its notification.sent/failed event are written
in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime, timedelta

from services.notifications.models import Attempt, Delivery, Endpoint, Message
from services.notifications.repository import NotificationsRepository
from services.notifications.settings import NotificationsSettings
from services.notifications.webhook_sender import AttemptResult, WebhookSender
from shared.clock import Clock
from shared.context import bound
from shared.events.catalog.notifications import (
    NotificationFailed,
    NotificationOutcomeData,
    NotificationSent,
)
from shared.events.registry import build_event
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)
SOURCE = "/followthrough/notifications"


class Dispatcher:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: NotificationsSettings,
        sender: WebhookSender,
        clock: Clock,
    ) -> None:
        self._runtime = runtime
        self._db = runtime.database
        self._settings = settings
        self._sender = sender
        self._clock = clock
        self.wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.dispatch_concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def stop(self) -> None:
        self._stopping.set()
        self.wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self._settings.webhook_timeout_seconds)
        await self._sender.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await self._claim()
            except Exception as error:
                log.warning("dispatch.claim.failed", error=repr(error))
                claimed = []
                await self._sleep(1.0)
            if len(claimed) < self._settings.dispatch_batch_size:
                await self._sleep(self._settings.dispatch_poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)
        self.wake.clear()

    async def _claim(self) -> list[Delivery]:
        now = self._clock.now()
        lease = now + timedelta(seconds=self._settings.dispatch_lease_seconds)
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            deliveries = await repository.claim_due(now, lease, self._settings.dispatch_batch_size)
            endpoints = await repository.endpoints_by_id(
                [d.endpoint_id for d in deliveries if d.endpoint_id]
            )
            messages = await repository.messages_by_id([d.message_id for d in deliveries])
        for delivery in deliveries:
            await self._slots.acquire()
            endpoint = endpoints.get(delivery.endpoint_id or "")
            task = asyncio.create_task(
                self._attempt(delivery, messages[delivery.message_id], endpoint)
            )
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return deliveries

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _attempt(
        self, delivery: Delivery, message: Message, endpoint: Endpoint | None
    ) -> None:
        with bound(
            correlation_id=message.correlation_id, tenant_id=message.tenant_id, event_id=message.id
        ):
            await self._attempt_in_context(delivery, message, endpoint)

    async def _attempt_in_context(
        self, delivery: Delivery, message: Message, endpoint: Endpoint | None
    ) -> None:
        started = self._clock.now()
        if endpoint is None or not endpoint.enabled:
            result = AttemptResult(False, None, 0.0, "endpoint disabled or deleted", None)
        else:
            result = await self._sender.send(
                url=endpoint.url,
                secrets=[endpoint.secret],
                msg_id=message.id,
                body=message.payload,
                now=started,
            )
        try:
            await self._record(delivery.id, message, result, started)
        except Exception as error:
            log.error("dispatch.record.failed", delivery_id=delivery.id, error=repr(error))

    async def _record(
        self, delivery_id: str, message: Message, result: AttemptResult, started: datetime
    ) -> None:
        schedule = self._settings.webhook_retry_schedule_seconds
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            delivery = await repository.delivery(delivery_id)
            if delivery is None or delivery.status != "pending":
                return
            delivery.attempts += 1
            now = self._clock.now()
            repository.add(
                Attempt(
                    delivery_id=delivery.id,
                    number=delivery.attempts,
                    started_at=started,
                    latency_ms=result.latency_ms,
                    status_code=result.status_code,
                    error=result.error,
                    response_excerpt=result.excerpt,
                )
            )
            delivery.last_status_code = result.status_code
            delivery.last_error = result.error
            delivery.locked_until = None
            delivery.updated_at = now
            final_event: type[NotificationSent] | type[NotificationFailed] | None = None
            if result.succeeded:
                delivery.status = "succeeded"
                delivery.next_attempt_at = None
                final_event = NotificationSent
            elif delivery.attempts >= len(schedule):
                delivery.status = "failed"
                delivery.next_attempt_at = None
                final_event = NotificationFailed
            else:
                delay = schedule[delivery.attempts] * random.uniform(0.9, 1.1)
                delivery.next_attempt_at = now + timedelta(seconds=delay)
            if final_event is not None:
                event = build_event(
                    final_event,
                    NotificationOutcomeData(
                        message_id=message.id,
                        delivery_id=delivery.id,
                        event_id=message.id,
                        event_type=message.event_type,
                        goal_id=message.goal_id,
                        channel="webhook",
                        target=delivery.endpoint_id or "",
                        attempts=delivery.attempts,
                        last_status_code=result.status_code,
                        last_error=result.error,
                    ),
                    tenant_id=delivery.tenant_id,
                    partition_key=message.goal_id or delivery.endpoint_id or message.id,
                    source=SOURCE,
                    correlation_id=message.correlation_id,
                    causation_id=message.id,
                )
                await self._runtime.outbox.add(session, [event])
        log.info(
            "delivery.attempt.succeeded" if result.succeeded else "delivery.attempt.failed",
            delivery_id=delivery_id,
            message_id=message.id,
            endpoint_id=delivery.endpoint_id,
            attempt=delivery.attempts,
            status_code=result.status_code,
            latency_ms=round(result.latency_ms, 2),
            error=result.error,
        )
