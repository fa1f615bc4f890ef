"""What an attempt's result means: the next attempt, a final outcome, or a disabled endpoint.

One transaction writes each attempt's row, its delivery's new state, the
endpoint's failure tracking and (when final) the notification.sent /
notification.failed / endpoint.disabled events into the outbox, so the
attempts log, the queue and the published events never disagree. It is one
synchronous function of Core statements (``DeliveryOutcomes``) run with
``Database.run_core``: every attempt pays this transaction, and entering
SQLAlchemy's greenlet once instead of at every step is most of its cost.
"""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from services.notifications.events import delivery_outcome, endpoint_disabled
from services.notifications.models import Endpoint, Message
from services.notifications.repository import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    DeliveryOutcomes,
    DeliveryProgress,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.webhooks.sender import AttemptResult
from shared import metrics
from shared.clock import Clock
from shared.events.catalog.notifications import (
    NotificationFailed,
    NotificationSent,
)
from shared.events.envelope import CloudEvent
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)
SERVICE = "notifications"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased delivery with what its attempt needs, read in the claiming transaction."""

    delivery_id: str
    channel: str
    attempts: int
    message: Message
    endpoint: Endpoint | None
    recipient: dict[str, object] | None
    lane: str = ""


def _outcome(
    cls: type[NotificationSent] | type[NotificationFailed],
    claimed: Claimed,
    attempts: int,
    result: AttemptResult,
) -> CloudEvent:
    return delivery_outcome(
        cls,
        message=claimed.message,
        delivery_id=claimed.delivery_id,
        channel=claimed.channel,
        endpoint=claimed.endpoint,
        recipient=claimed.recipient,
        attempts=attempts,
        result=result,
    )


def _fail(item: _Pending, error: BaseException) -> None:
    if not item.done.done():
        item.done.set_exception(error)


def retry_delay(schedule: list[float], attempts_made: int, jitter: float) -> float | None:
    """Seconds until the next attempt, or None when the schedule is used up."""
    if attempts_made >= len(schedule):
        return None
    base = schedule[attempts_made]
    return base * random.uniform(1 - jitter, 1 + jitter) if base > 0 else 0.0


@dataclass(slots=True)
class _Pending:
    claimed: Claimed
    result: AttemptResult
    started: datetime
    done: asyncio.Future[str]
    status: str = ""
    delay: float | None = None
    superfluous: bool = False


class OutcomeRecorder:
    """Records attempts, many to a transaction (group commit).

    Attempts finish one by one, and a transaction each cost more than the
    attempt (its begin, reads and commit, an outbox insert, a relay wake-up).
    ``record`` queues the result and waits; one writer takes everything queued
    into one transaction, and what finishes meanwhile goes into the next. Each
    attempt's effects are the same as alone; if a group fails, its attempts
    are recorded one by one, so one bad attempt cannot fail its neighbours.
    """

    def __init__(
        self, runtime: ServiceRuntime, settings: NotificationsSettings, clock: Clock
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._clock = clock
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    def _schedule(self, channel: str) -> list[float]:
        if channel == "email":
            return self._settings.email_retry_schedule_seconds
        return self._settings.webhook_retry_schedule_seconds

    async def record(self, claimed: Claimed, result: AttemptResult, started: datetime) -> str:
        """Store the attempt and move the delivery on; returns the delivery's new status."""
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(claimed, result, started, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="outcome-writer")
        return await asyncio.shield(done)

    async def drain(self) -> None:
        """Wait until everything queued is written (at shutdown, before the database closes)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _write_queued(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            try:
                await self._write(group)
            except Exception as error:
                if len(group) == 1:
                    _fail(group[0], error)
                    continue
                for item in group:  # find the one at fault; the others still count
                    try:
                        await self._write([item])
                    except Exception as single:
                        _fail(item, single)

    async def _write(self, group: list[_Pending]) -> None:
        wrote_events = await self._runtime.database.run_core(
            functools.partial(self._write_group, group), write=True
        )
        if wrote_events:
            self._runtime.outbox.committed.set()
        for item in group:
            self._report(item)
            if not item.done.done():
                item.done.set_result(item.status)

    def _write_group(self, group: list[_Pending], connection: Connection) -> bool:
        """The group's transaction, as one synchronous function; True if it wrote events."""
        outcomes = DeliveryOutcomes(connection)
        events: list[CloudEvent] = []
        attempts: list[dict[str, object]] = []
        moved: dict[str, DeliveryProgress] = {}
        deliveries = outcomes.delivery_progress([p.claimed.delivery_id for p in group])
        for index, item in enumerate(group):
            delivery = deliveries.get(item.claimed.delivery_id)
            now = self._clock.now()
            if not self._apply(item, delivery, now, attempts, events):
                continue
            assert delivery is not None
            moved[delivery.id] = delivery
            endpoint = item.claimed.endpoint
            if endpoint is None or item.claimed.channel != "webhook":
                continue
            if not item.result.succeeded:
                # A failure may disable the endpoint, which cancels its pending
                # deliveries in SQL: what this group moved must be written first.
                outcomes.record_attempts(attempts, list(moved.values()), now)
                attempts, moved = [], {}
            disabled = self._track_endpoint(outcomes, endpoint, item.result, now)
            if disabled:  # cancelled the endpoint's pending deliveries: read them again
                events += disabled
                rest = [p.claimed.delivery_id for p in group[index + 1 :]]
                deliveries.update(outcomes.delivery_progress(rest))
        outcomes.record_attempts(attempts, list(moved.values()), self._clock.now())
        return self._runtime.outbox.insert_on(connection, events)

    def _apply(
        self,
        item: _Pending,
        delivery: DeliveryProgress | None,
        now: datetime,
        attempts: list[dict[str, object]],
        events: list[CloudEvent],
    ) -> bool:
        """One attempt's effects on its delivery, in memory; False if it was recorded already."""
        claimed, result = item.claimed, item.result
        if delivery is None or delivery.status != PENDING:
            # Someone recorded it first (its lease had run out): at least once, so say so.
            item.superfluous = True
            item.status = delivery.status if delivery else CANCELLED
            return False
        delivery.attempts += 1
        attempts.append(
            {
                "delivery_id": delivery.id,
                "number": delivery.attempts,
                "started_at": item.started,
                "latency_ms": round(result.latency_ms, 3),
                "status_code": result.status_code,
                "error": result.error,
                "response_excerpt": result.excerpt,
            }
        )
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        delay = None
        if not result.succeeded and not result.abort and not result.gone:
            delay = retry_delay(
                self._schedule(claimed.channel),
                delivery.attempts,
                self._settings.webhook_retry_jitter,
            )
            if delay is not None and result.retry_after is not None:
                delay = min(result.retry_after, self._settings.webhook_retry_after_max_seconds)
        if result.succeeded:
            delivery.status, delivery.next_attempt_at = SUCCEEDED, None
            events.append(_outcome(NotificationSent, claimed, delivery.attempts, result))
        elif delay is None:
            delivery.status, delivery.next_attempt_at = FAILED, None
            events.append(_outcome(NotificationFailed, claimed, delivery.attempts, result))
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        item.status, item.delay = delivery.status, delay
        return True

    def _report(self, item: _Pending) -> None:
        """Metrics and the attempt's log line, once its transaction committed."""
        claimed, result, message = item.claimed, item.result, item.claimed.message
        if item.superfluous:
            log.warning(
                "delivery.attempt.superfluous",
                delivery_id=claimed.delivery_id,
                status=item.status,
                succeeded=result.succeeded,
            )
            return
        outcome = item.status if item.status != PENDING else "retrying"
        metrics.DELIVERIES.labels(SERVICE, claimed.channel, outcome).inc()
        if item.status == SUCCEEDED:
            lag = (self._clock.now() - message.event_time).total_seconds()
            metrics.DELIVERY_LATENCY.labels(SERVICE, claimed.channel).observe(max(0.0, lag))
        endpoint = claimed.endpoint
        log.info(
            "delivery.attempt.succeeded" if result.succeeded else "delivery.attempt.failed",
            delivery_id=claimed.delivery_id,
            message_id=message.id,
            channel=claimed.channel,
            endpoint_id=endpoint.id if endpoint else None,
            attempt=claimed.attempts + 1,
            status_code=result.status_code,
            latency_ms=round(result.latency_ms, 2),
            error=result.error,
            outcome=outcome,
            retry_in=item.delay,
        )

    def _track_endpoint(
        self,
        outcomes: DeliveryOutcomes,
        endpoint: Endpoint,
        result: AttemptResult,
        now: datetime,
    ) -> list[CloudEvent]:
        """Clear or start the failure clock; disable on 410 or after failing too long."""
        if result.succeeded:
            if endpoint.failing_since is not None:
                outcomes.clear_failing(endpoint.id)
            return []
        reason: str | None = None
        if result.gone:
            reason = "gone"
        elif endpoint.failing_since is None:
            outcomes.mark_failing(endpoint.id, now)
        elif now - endpoint.failing_since >= timedelta(
            hours=self._settings.webhook_disable_after_hours
        ):
            reason = "failing"
        if reason is None:
            return []
        return disable_endpoint(outcomes.connection, endpoint, reason, now)


def disable_endpoint(
    connection: Connection, endpoint: Endpoint, reason: str, now: datetime
) -> list[CloudEvent]:
    """Switch an endpoint off, cancel what it still owes, and say so with endpoint.disabled.

    Synchronous Core work: the recorder's transaction calls it directly, the
    operator's through ``NotificationsRepository.run_core``.
    """
    outcomes = DeliveryOutcomes(connection)
    if not outcomes.disable_endpoint(endpoint.id, reason, now):
        return []
    cancelled = outcomes.cancel_pending(endpoint.id, f"endpoint disabled ({reason})", now)
    log.warning(
        "endpoint.disabled",
        endpoint_id=endpoint.id,
        reason=reason,
        failing_since=endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        cancelled_deliveries=cancelled,
    )
    return [endpoint_disabled(endpoint, reason)]


__all__ = ["CANCELLED", "FAILED", "Claimed", "OutcomeRecorder", "disable_endpoint", "retry_delay"]
