"""The delivery worker: leases due deliveries from the database queue and attempts them.

Deliveries run from the database, never inside the Kafka handler, so a slow
endpoint cannot hold up intake. Work is claimed only for lanes with room
(see ``lanes``): a hanging endpoint holds at most its own few slots, and the
claim query skips it, so everyone else's deliveries keep flowing. A lease
(``locked_until``) marks claimed rows; if this process dies mid-attempt, the
lease runs out and any replica picks the delivery up again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from datetime import UTC, datetime, timedelta

import orjson

from services.notifications.delivery.lanes import EMAIL_LANE, Lane, Lanes
from services.notifications.delivery.outcomes import Claimed, OutcomeRecorder
from services.notifications.email.delivery import EmailDelivery
from services.notifications.email.smtp import SmtpPool
from services.notifications.models import Endpoint
from services.notifications.repository import CANCELLED, DueDelivery, NotificationsRepository
from services.notifications.settings import NotificationsSettings
from services.notifications.webhooks.sender import AttemptResult, WebhookSender
from services.notifications.webhooks.signing import SecretBox
from shared import faults, metrics, tracing
from shared.clock import Clock
from shared.context import bound
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)
_NO_SPAN = contextlib.nullcontext()  # while tracing is off (reusable)

CLAIM_COALESCE_SECONDS = 0.005


class Dispatcher:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: NotificationsSettings,
        sender: WebhookSender,
        smtp: SmtpPool,
        box: SecretBox,
        clock: Clock,
    ) -> None:
        self._db = runtime.database
        self._settings = settings
        self._sender = sender
        self._smtp = smtp
        self._box = box
        self._clock = clock
        self._recorder = OutcomeRecorder(runtime, settings, clock)
        self._email = EmailDelivery(runtime, settings, clock, smtp, self._recorder)
        self._lanes = Lanes(
            default_concurrency=settings.webhook_endpoint_concurrency,
            email_concurrency=settings.smtp_pool_size,
        )
        self.wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stats_at = 0.0
        # Every series from the start at 0, so rates and increase() see the first delivery.
        for channel in ("webhook", "email"):
            for outcome in ("succeeded", "retrying", "failed", "cancelled", "suppressed"):
                metrics.DELIVERIES.labels("notifications", channel, outcome)
        self.claimed = 0
        """Deliveries this process has claimed since it started (for tests and debugging)."""
        self._reserved = 0
        self._freed: set[str] = set()
        self._backlog = True
        """The last claim left due work behind: any finished attempt should claim again."""
        self._blocked: set[str] = set()
        """Full lanes with work waiting (skipped by a claim, or refused to intake): a slot
        freeing there should claim again."""
        self._coalescing: asyncio.TimerHandle | None = None
        """A claim planned for a moment from now (see ``_wake_soon``)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def stop(self) -> None:
        self._stopping.set()
        if self._coalescing is not None:
            self._coalescing.cancel()
            self._coalescing = None
        self.wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self._settings.webhook_timeout_seconds + 1)
        for task in list(self._in_flight):
            task.cancel()
        await self._recorder.drain()
        await self._sender.close()
        await self._smtp.close()

    # -- hand-off from intake ----------------------------------------------------
    #
    # A delivery intake writes due now, for a lane with a free slot, does not
    # need a claim: intake takes the slot before it writes the row, writes the
    # row already leased to this process, and hands it over once its
    # transaction committed. The claim (a transaction of five statements per
    # round) is then only for retries and for work no lane had room for.
    # The lease means the same as a claimed one: if this process dies, it runs
    # out and any replica takes the delivery.

    def reserve(self, lane: str, endpoint: Endpoint | None) -> bool:
        """Take a slot in ``lane`` for a delivery about to be written, if one is free now."""
        if self._stopping.is_set() or self._task is None:
            return False  # the first claim at start finds it
        if len(self._in_flight) + self._reserved >= self._settings.dispatch_max_in_flight:
            self._backlog = True  # a finished attempt claims it
            return False
        slot = self._lane(lane, endpoint)
        if not slot.has_room():
            self._blocked.add(lane)  # a slot freeing in this lane claims it
            return False
        slot.take()
        self._reserved += 1
        return True

    def written(self, lanes: set[str]) -> None:
        """Deliveries it could not take for these lanes are committed: claim them when there
        is room (now, if a slot freed before they were visible)."""
        self._blocked |= lanes
        if any(self._lanes.has_room(lane) for lane in lanes):
            self.wake.set()

    def unreserve(self, lane: str) -> None:
        """The delivery a slot was taken for was not written after all."""
        self._reserved -= 1
        self._lanes.release(lane)

    def lease_until(self) -> datetime:
        """When a lease taken now runs out (wall-clock time, like every lease)."""
        return datetime.now(UTC) + timedelta(seconds=self._settings.dispatch_lease_seconds)

    def hand_over(self, items: list[Claimed]) -> None:
        """Start the attempts of committed, leased deliveries whose slots were reserved."""
        self._reserved -= len(items)
        self.claimed += len(items)
        for item in items:
            self._start(item)

    def _start(self, item: Claimed) -> None:
        task = asyncio.create_task(self._attempt(item), name=f"delivery:{item.delivery_id}")
        self._in_flight.add(task)
        task.add_done_callback(functools.partial(self._finished, item=item))

    def _lane(self, key: str, endpoint: Endpoint | None) -> Lane:
        if key == EMAIL_LANE:
            return self._lanes.get(EMAIL_LANE)
        return self._lanes.get(
            key,
            rate_per_second=(endpoint.rate_limit_per_second if endpoint else None)
            or self._settings.webhook_default_rate_per_second,
        )

    async def _run(self) -> None:
        while not self._stopping.is_set():
            claimed = 0
            try:
                claimed = await self._claim()
                await self._refresh_gauges()
            except Exception as error:
                log.warning("dispatch.claim.failed", error=repr(error))
                await self._sleep(1.0)
                continue
            if claimed < self._settings.dispatch_batch_size:
                wait = self._settings.dispatch_poll_seconds
                token = self._lanes.next_token_in()
                await self._sleep(min(wait, token) if token else wait)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)
        self.wake.clear()

    async def _claim(self) -> int:
        room = self._settings.dispatch_max_in_flight - len(self._in_flight) - self._reserved
        if room <= 0:
            self._backlog = True
            return 0
        saturated = self._lanes.saturated()
        now = self._clock.now()
        # Leases measure real elapsed time (is the claimer still alive?), whatever clock
        # schedules the attempts: a test moving its clock a day ahead must not expire the
        # lease of an attempt still in flight, or the delivery would be sent twice.
        wall = datetime.now(UTC)
        lease = wall + timedelta(seconds=self._settings.dispatch_lease_seconds)
        accepted: list[Claimed] = []
        chosen: list[tuple[DueDelivery, str]] = []
        try:
            async with self._db.transaction() as session:
                repository = NotificationsRepository(session)
                candidates = await repository.due_candidates(
                    now,
                    min(room, self._settings.dispatch_batch_size),
                    lease_now=wall,
                    skip_endpoints=[key for key in saturated if key != EMAIL_LANE],
                    skip_email=EMAIL_LANE in saturated,
                )
                self._blocked = set(saturated)
                if not candidates:
                    self._backlog = False
                    return 0
                endpoints = await repository.endpoints_by_id(
                    [d.endpoint_id for d in candidates if d.endpoint_id]
                )
                chosen = self._take_lanes(candidates, endpoints)
                limit = min(room, self._settings.dispatch_batch_size)
                self._backlog = len(chosen) < len(candidates) or len(candidates) >= limit
                # Messages (with their payloads) only for what was taken.
                messages = await repository.messages_by_id([d.message_id for d, _ in chosen])
                accepted = [
                    Claimed(
                        delivery_id=delivery.id,
                        channel=delivery.channel,
                        attempts=delivery.attempts,
                        message=messages[delivery.message_id],
                        endpoint=endpoints.get(delivery.endpoint_id or ""),
                        recipient=delivery.recipient,
                        lane=key,
                    )
                    for delivery, key in chosen
                ]
                await repository.lease([c.delivery_id for c in accepted], lease)
        except BaseException:
            # Nothing was leased: give back the lane slots taken for it.
            for _, key in chosen:
                self._lanes.release(key)
            raise
        self.claimed += len(accepted)
        for item in accepted:
            self._start(item)
        return len(accepted)

    def _take_lanes(
        self, candidates: list[DueDelivery], endpoints: dict[str, Endpoint]
    ) -> list[tuple[DueDelivery, str]]:
        """The candidates whose lanes have room, with a slot taken in each; and their lane."""
        chosen: list[tuple[DueDelivery, str]] = []
        for delivery in candidates:
            endpoint = endpoints.get(delivery.endpoint_id or "")
            key = EMAIL_LANE if delivery.channel == "email" else delivery.endpoint_id or ""
            lane = self._lane(key, endpoint)
            if not lane.has_room():
                continue  # left unleased: the next claim finds it when the lane frees up
            lane.take()
            chosen.append((delivery, key))
        return chosen

    def _free_slot(self, item: Claimed) -> None:
        """The endpoint is done with this attempt: its lane may start another (once)."""
        if item.delivery_id in self._freed:
            return
        self._freed.add(item.delivery_id)
        self._lanes.release(item.lane)
        # Claim again only if work may be waiting for this slot; new work is handed over
        # by intake, and retries come due on the poll.
        if self._backlog or item.lane in self._blocked:
            self._wake_soon()

    def _wake_soon(self) -> None:
        """Claim after a few more slots had a chance to free up, not once per freed slot.

        Under a backlog every attempt that ends frees a slot; a claim per slot
        reads a batch of candidates to take one, so a few milliseconds' wait
        (work that is already waiting) turns many claims into one.
        """
        if self._coalescing is None:
            self._coalescing = asyncio.get_running_loop().call_later(
                CLAIM_COALESCE_SECONDS, self._wake_now
            )

    def _wake_now(self) -> None:
        self._coalescing = None
        self.wake.set()

    def _finished(self, task: asyncio.Task[None], *, item: Claimed) -> None:
        self._in_flight.discard(task)
        self._free_slot(item)
        self._freed.discard(item.delivery_id)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "dispatch.attempt.crashed",
                delivery_id=item.delivery_id,
                error=repr(task.exception()),
            )

    async def _attempt(self, item: Claimed) -> None:
        message = item.message
        with (
            bound(
                correlation_id=message.correlation_id,
                tenant_id=message.tenant_id,
                event_id=message.id,
            ),
            _delivery_span(item) if tracing.enabled else _NO_SPAN,
        ):
            started = self._clock.now()
            try:
                if item.channel == "email":
                    await self._email.attempt(item, sent=lambda: self._free_slot(item))
                else:
                    await self._attempt_webhook(item)
            except Exception as error:
                # A bug or an outage mid-attempt must not leave the delivery leased and retried
                # at every lease expiry forever: it counts as a failed attempt on the schedule.
                log.error("dispatch.attempt.error", delivery_id=item.delivery_id, error=repr(error))
                result = AttemptResult(
                    False, None, 0.0, f"internal error: {type(error).__name__}", None
                )
                await self._recorder.record(item, result, started)

    async def _attempt_webhook(self, item: Claimed) -> None:
        endpoint = item.endpoint
        if endpoint is None or not endpoint.enabled:
            await self._cancel(item, "endpoint disabled or deleted")
            return
        started = self._clock.now()
        result = await self._sender.send(
            url=endpoint.url,
            secrets=self._secrets(endpoint),
            msg_id=item.message.id,
            body=item.message.payload,
            extra_headers={str(k): str(v) for k, v in (endpoint.headers or {}).items()},
            lane=item.lane,
        )
        # The lane bounds requests to the endpoint; recording the outcome is ours, so the
        # next attempt to this endpoint need not wait for it (the delivery stays leased).
        self._free_slot(item)
        if faults.armed:
            await faults.reached("dispatcher.after_send")
        await self._recorder.record(item, result, started)

    def _secrets(self, endpoint: Endpoint) -> list[str]:
        secrets = [self._box.open(endpoint.secret)]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret and expires and expires > self._clock.now():
            secrets.append(self._box.open(endpoint.previous_secret))
        return secrets

    async def _cancel(self, item: Claimed, reason: str) -> None:
        async with self._db.transaction() as session:
            delivery = await NotificationsRepository(session).delivery(item.delivery_id)
            if delivery is not None and delivery.status == "pending":
                delivery.status = CANCELLED
                delivery.last_error = reason
                delivery.locked_until = None
                delivery.next_attempt_at = None
                delivery.updated_at = self._clock.now()
        metrics.DELIVERIES.labels("notifications", item.channel, CANCELLED).inc()
        log.info("delivery.cancelled", delivery_id=item.delivery_id, reason=reason)

    async def _refresh_gauges(self) -> None:
        if time.monotonic() - self._stats_at < self._settings.dispatch_stats_seconds:
            return
        self._stats_at = time.monotonic()
        async with self._db.reader() as session:
            counts = await NotificationsRepository(session).endpoint_state_counts()
        for state, count in counts.items():
            metrics.ENDPOINTS.labels("notifications", state).set(count)
        self._lanes.forget_idle()


# Keep AttemptResult importable from here for callers that build synthetic results.
__all__ = ["AttemptResult", "Dispatcher"]


def _delivery_span(item: Claimed) -> contextlib.AbstractContextManager[object]:
    """The attempt's span, continuing the trace of the span that made the event.

    The stored message is the event as it arrived, whose ``traceparent``
    attribute names that span. A webhook's request (an httpx client span inside)
    carries this trace on to the endpoint in its ``traceparent`` header.
    """
    from shared.tracing.spans import span

    message = item.message
    try:
        traceparent = orjson.loads(message.payload).get("traceparent")
    except (orjson.JSONDecodeError, AttributeError):
        traceparent = None
    attributes: dict[str, str | int] = {
        "followthrough.delivery.id": item.delivery_id,
        "followthrough.delivery.channel": item.channel,
        "followthrough.delivery.attempt": item.attempts + 1,
        "followthrough.tenant_id": message.tenant_id,
        "followthrough.correlation_id": message.correlation_id or "",
        "cloudevents.event_id": message.id,
        "cloudevents.event_type": message.event_type,
    }
    if item.endpoint is not None:
        attributes["followthrough.endpoint.id"] = item.endpoint.id
    return span(
        f"deliver {item.channel}",
        parent=traceparent if isinstance(traceparent, str) else None,
        attributes=attributes,
    )
