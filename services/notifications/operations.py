"""The operations view: messages with their deliveries and attempts, replay, recover, routing."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.intake_rows import new_delivery
from services.notifications.models import Delivery, ErasedMessage, Message
from services.notifications.repository import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    NotificationsRepository,
)
from services.notifications.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryOutcomes,
    MessageDetail,
    MessagePage,
    MessageSummary,
    OutcomeBucket,
    RecoverAccepted,
    ReplayAccepted,
    Routing,
    RoutingDecision,
)
from services.notifications.webhooks.matching import payload_matches, type_matches
from shared.clock import Clock
from shared.http.cursors import decode_cursor, encode_cursor
from shared.http.problems import ProblemError
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)
RECOVER_LIMIT = 10_000
OUTCOME_ORDER = ("succeeded", "failed", "pending", "cancelled", "suppressed", "superseded")
HOUR = timedelta(hours=1)


def message_status(statuses: list[str]) -> str:
    if not statuses:
        return "unrouted"
    if PENDING in statuses:
        return "pending"
    failed = FAILED in statuses or CANCELLED in statuses
    succeeded = SUCCEEDED in statuses
    if failed and succeeded:
        return "mixed"
    if failed:
        return "failed"
    return "succeeded" if succeeded else "unrouted"


def summary(message: Message, statuses: list[str]) -> MessageSummary:
    return MessageSummary(
        id=message.id,
        event_type=message.event_type,
        kind=message.kind,
        goal_id=message.goal_id,
        correlation_id=message.correlation_id,
        status=message_status(statuses),  # type: ignore[arg-type]
        event_time=message.event_time,
        created_at=message.created_at,
    )


def delivery_out(delivery: Delivery, attempts: list[AttemptOut]) -> DeliveryOut:
    recipient = delivery.recipient or {}
    return DeliveryOut(
        id=delivery.id,
        channel="email" if delivery.channel == "email" else "webhook",
        endpoint_id=delivery.endpoint_id,
        recipient=recipient.get("email"),
        role=recipient.get("role"),
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        replay_of=delivery.replay_of,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        attempt_log=attempts,
    )


class OperationsService:
    def __init__(self, runtime: ServiceRuntime, clock: Clock, wake: asyncio.Event) -> None:
        self._db = runtime.database
        self._clock = clock
        self._wake = wake

    async def list_messages(
        self,
        tenant_id: str,
        *,
        event_type: str | None,
        goal_id: str | None,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> MessagePage:
        before = decode_cursor(cursor)
        async with self._db.reader() as session:
            repository = NotificationsRepository(session)
            await repository.snapshot()
            rows = await repository.list_messages(
                tenant_id,
                event_type=event_type,
                goal_id=goal_id,
                status=status,
                since=since,
                until=until,
                before=before,
                limit=limit + 1,
            )
            page = rows[:limit]
            deliveries = await repository.deliveries_of([m.id for m in page])
        statuses: dict[str, list[str]] = defaultdict(list)
        for delivery in deliveries:
            statuses[delivery.message_id].append(delivery.status)
        more = len(rows) > limit
        return MessagePage(
            items=[summary(m, statuses[m.id]) for m in page],
            next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more and page else None,
        )

    async def message(self, tenant_id: str, message_id: str) -> MessageDetail:
        async with self._db.reader() as session:
            repository = NotificationsRepository(session)
            await repository.snapshot()
            message = await repository.message(tenant_id, message_id)
            if message is None:
                raise ProblemError(404, f"message {message_id} not found", slug="not-found")
            deliveries = await repository.deliveries_of([message.id])
            attempts = await repository.attempts_of([d.id for d in deliveries])
        by_delivery: dict[str, list[AttemptOut]] = defaultdict(list)
        for attempt in attempts:
            by_delivery[attempt.delivery_id].append(
                AttemptOut(
                    number=attempt.number,
                    started_at=attempt.started_at,
                    latency_ms=attempt.latency_ms,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    response_excerpt=attempt.response_excerpt,
                )
            )
        base = summary(message, [d.status for d in deliveries])
        return MessageDetail(
            **base.model_dump(),
            event=_event_json(message.payload),
            deliveries=[delivery_out(d, by_delivery[d.id]) for d in deliveries],
        )

    async def replay(
        self, tenant_id: str, message_id: str, endpoint_id: str | None
    ) -> ReplayAccepted:
        """Send a stored message again (same webhook-id) to one endpoint, or all that match now."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            message = await repository.message(tenant_id, message_id)
            if message is None:
                raise ProblemError(404, f"message {message_id} not found", slug="not-found")
            await refuse_erased(session, message.id)
            if endpoint_id is not None:
                endpoint = await repository.endpoint(tenant_id, endpoint_id)
                if endpoint is None:
                    raise ProblemError(404, f"endpoint {endpoint_id} not found", slug="not-found")
                if not endpoint.enabled:
                    raise ProblemError(
                        409,
                        f"endpoint {endpoint_id} is disabled; enable it first",
                        slug="endpoint-disabled",
                    )
                targets = [endpoint]
            else:
                data = _event_json(message.payload).get("data") or {}
                targets = [
                    e
                    for e in (await repository.tenant_endpoints([tenant_id]))[tenant_id]
                    if e.enabled
                    and type_matches(e.event_types, message.event_type)
                    and payload_matches(e.payload_filter, data)
                ]
            previous = {
                d.endpoint_id: d.id
                for d in await repository.deliveries_of([message.id])
                if d.endpoint_id and d.status in (FAILED, CANCELLED)
            }
            created = [
                new_delivery(
                    tenant_id, message.id, "webhook", now, e.id, replay_of=previous.get(e.id)
                )
                for e in targets
            ]
            repository.add(*created)
            await repository.supersede([p for p in previous.values() if p], now)
        self._wake.set()
        log.info("message.replayed", message_id=message_id, deliveries=len(created))
        return ReplayAccepted(message_id=message_id, deliveries=[d.id for d in created])

    async def recover(self, tenant_id: str, endpoint_id: str, since: datetime) -> RecoverAccepted:
        """Resend everything that failed (or was cancelled) for an endpoint since a time."""
        now = self._clock.now()
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            endpoint = await repository.endpoint(tenant_id, endpoint_id)
            if endpoint is None:
                raise ProblemError(404, f"endpoint {endpoint_id} not found", slug="not-found")
            if not endpoint.enabled:
                raise ProblemError(
                    409,
                    f"endpoint {endpoint_id} is disabled; enable it first",
                    slug="endpoint-disabled",
                )
            failed = await repository.recoverable(tenant_id, endpoint_id, since, RECOVER_LIMIT)
            created = [
                new_delivery(tenant_id, d.message_id, "webhook", now, endpoint_id, replay_of=d.id)
                for d in failed
            ]
            repository.add(*created)
            await repository.supersede([d.id for d in failed], now)
        self._wake.set()
        log.info("endpoint.recovered", endpoint_id=endpoint_id, deliveries=len(created))
        return RecoverAccepted(
            endpoint_id=endpoint_id, since=since, deliveries=[d.id for d in created]
        )

    async def outcomes(self, tenant_id: str, hours: int) -> DeliveryOutcomes:
        """Deliveries by status, per hour, for the last ``hours`` (the current hour included).

        A delivery counts once, in the hour it last changed: a success when it
        succeeded, a failure when it failed for good, pending while it waits for
        its next attempt, superseded once a replay or recover took its place.
        """
        now = self._clock.now()
        first = now.replace(minute=0, second=0, microsecond=0) - (hours - 1) * HOUR
        edges = [first + n * HOUR for n in range(hours)] + [now + timedelta(microseconds=1)]
        async with self._db.reader() as session:
            counts = await NotificationsRepository(session).delivery_outcomes(tenant_id, edges)
        statuses = [s for s in OUTCOME_ORDER if s in counts] + sorted(
            s for s in counts if s not in OUTCOME_ORDER
        )
        return DeliveryOutcomes(
            since=first,
            until=now,
            bucket_seconds=int(HOUR.total_seconds()),
            statuses=statuses,
            totals={status: sum(counts[status]) for status in statuses},
            buckets=[
                OutcomeBucket(start=edges[n], counts={s: counts[s][n] for s in statuses})
                for n in range(hours)
            ],
        )

    async def routing(self, tenant_id: str, event_id: str) -> Routing:
        async with self._db.reader() as session:
            message = await NotificationsRepository(session).message(tenant_id, event_id)
        if message is None:
            raise ProblemError(404, f"event {event_id} not found", slug="not-found")
        return Routing(
            event_id=message.id,
            event_type=message.event_type,
            decisions=[RoutingDecision.model_validate(item) for item in message.routing or []],
        )


async def refuse_erased(session: AsyncSession, message_id: str) -> None:
    """A message that named an erased person is never sent again: 409 person-erased."""
    erased = await session.scalar(
        select(ErasedMessage.erased_at).where(ErasedMessage.message_id == message_id)
    )
    if erased is not None:
        raise ProblemError(
            409,
            f"message {message_id} named a person who has since been erased; it is not "
            "replayed (its stored copy no longer holds them)",
            slug="person-erased",
            erased_at=erased.isoformat(),
        )


def _event_json(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
