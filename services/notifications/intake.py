"""Intake: every domain event becomes a stored message and its deliveries, in one transaction.

Only after that transaction commits does the consumer runner commit the
offset; a redelivered event finds its message already stored and changes
nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from services.notifications.matching import type_matches
from services.notifications.models import Delivery, Message
from services.notifications.repository import NotificationsRepository
from shared.db.database import Database
from shared.events.envelope import CloudEvent, utc_now
from shared.kafka.consumer import ConsumedEvent, event_scope
from shared.logs import get_logger

log = get_logger(__name__)


def goal_id_of(event: CloudEvent) -> str | None:
    goal = getattr(event.data, "goal", None)
    goal_id = getattr(goal, "goal_id", None)
    return goal_id if isinstance(goal_id, str) else None


class IntakeHandler:
    def __init__(self, database: Database, wake_dispatcher: asyncio.Event) -> None:
        self._db = database
        self._wake = wake_dispatcher

    async def __call__(self, batch: Sequence[ConsumedEvent]) -> None:
        created = 0
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            for item in batch:
                event = item.event
                with event_scope(event):
                    if await repository.message_exists(event.id):
                        log.info("notifications.event.duplicate", event_type=event.type)
                        continue
                    created += await self._store(repository, event, item.record.value or b"")
        if created:
            self._wake.set()

    async def _store(
        self, repository: NotificationsRepository, event: CloudEvent, raw: bytes
    ) -> int:
        now = utc_now()
        repository.add(
            Message(
                id=event.id,
                tenant_id=event.tenantid,
                event_type=event.type,
                goal_id=goal_id_of(event),
                correlation_id=event.correlationid,
                payload=raw,
                event_time=event.time,
                created_at=now,
            )
        )
        endpoints = [
            endpoint
            for endpoint in await repository.enabled_endpoints(event.tenantid)
            if type_matches(endpoint.event_types, event.type)
        ]
        for endpoint in endpoints:
            repository.add(
                Delivery(
                    id=str(uuid.uuid4()),
                    tenant_id=event.tenantid,
                    message_id=event.id,
                    channel="webhook",
                    endpoint_id=endpoint.id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        log.info(
            "notifications.event.accepted",
            event_type=event.type,
            webhook_deliveries=len(endpoints),
        )
        return len(endpoints)
