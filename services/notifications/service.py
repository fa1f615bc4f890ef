"""Endpoint management rules: URL and SSRF checks, filters, secrets and rotation, tenant scoping.

The URL is checked against the SSRF guard here (at registration and on every
change) as well as at every delivery; secrets are generated here, stored
only encrypted, and returned only by creation and rotation.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from services.notifications.delivery.outcomes import disable_endpoint
from services.notifications.events import webhook_test
from services.notifications.intake_rows import new_delivery
from services.notifications.models import Endpoint, Message
from services.notifications.repository import DeliveryOutcomes, NotificationsRepository
from services.notifications.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    EndpointStats,
    SecretRotated,
    TestSent,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.webhooks.matching import payload_filter_errors
from services.notifications.webhooks.signing import SecretBox, new_secret
from services.notifications.webhooks.ssrf import BlockedAddressError, Guard, allowed_schemes
from shared.clock import Clock
from shared.http.cursors import decode_cursor, encode_cursor
from shared.http.problems import ProblemError
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
STATS_SAMPLE = 10_000


def invalid(field: str, message: str) -> ProblemError:
    return ProblemError(
        422,
        f"{field}: {message}",
        slug="validation-error",
        title="Request validation failed",
        errors=[{"field": field, "message": message}],
    )


def not_found(endpoint_id: str) -> ProblemError:
    return ProblemError(404, f"endpoint {endpoint_id} not found", slug="not-found")


def endpoint_out(endpoint: Endpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        payload_filter=endpoint.payload_filter,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        rate_limit_per_second=endpoint.rate_limit_per_second,
        headers={str(k): str(v) for k, v in (endpoint.headers or {}).items()},
        failing_since=endpoint.failing_since,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


class EndpointsService:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: NotificationsSettings,
        guard: Guard,
        box: SecretBox,
        clock: Clock,
        wake_dispatcher: asyncio.Event,
    ) -> None:
        self._runtime = runtime
        self._db = runtime.database
        self._settings = settings
        self._guard = guard
        self._box = box
        self._clock = clock
        self._wake = wake_dispatcher

    async def _check_url(self, url: str) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in allowed_schemes(self._settings.webhook_allow_http):
            raise invalid("body.url", "https required (plain http is not allowed here)")
        if parsed.userinfo:
            raise invalid("body.url", "credentials in the URL are not allowed; use headers")
        try:
            await self._guard.check_url(url)
        except BlockedAddressError as error:
            log.info("endpoint.url.refused", host=parsed.host, reason=str(error))
            raise invalid("body.url", f"target refused: {error}") from None

    def _check_filters(self, payload_filter: dict[str, Any] | None) -> None:
        if payload_filter:
            errors = payload_filter_errors(payload_filter)
            if errors:
                raise invalid("body.payload_filter", "; ".join(errors[:5]))

    def _check_headers(self, headers: dict[str, str] | None) -> None:
        for name in headers or {}:
            if name.lower() in RESERVED_HEADERS:
                raise invalid("body.headers", f"{name} is set by the service")

    async def create(self, tenant_id: str, payload: EndpointCreate) -> EndpointCreated:
        url = str(payload.url)
        self._check_filters(payload.payload_filter)
        self._check_headers(payload.headers)
        await self._check_url(url)
        now = self._clock.now()
        secret = new_secret()
        endpoint = Endpoint(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            url=url,
            description=payload.description,
            event_types=list(dict.fromkeys(payload.event_types)),
            payload_filter=payload.payload_filter or None,
            enabled=payload.enabled,
            rate_limit_per_second=payload.rate_limit_per_second,
            headers=dict(payload.headers),
            secret=self._box.seal(secret),
            previous_secret=None,
            previous_secret_expires_at=None,
            failing_since=None,
            disabled_reason=None if payload.enabled else "operator",
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            NotificationsRepository(session).add(endpoint)
        log.info("endpoint.created", endpoint_id=endpoint.id, event_types=endpoint.event_types)
        return EndpointCreated(**endpoint_out(endpoint).model_dump(), secret=secret)

    async def get(self, tenant_id: str, endpoint_id: str) -> EndpointOut:
        async with self._db.reader() as session:
            endpoint = await NotificationsRepository(session).endpoint(tenant_id, endpoint_id)
        if endpoint is None:
            raise not_found(endpoint_id)
        return endpoint_out(endpoint)

    async def list_endpoints(self, tenant_id: str, cursor: str | None, limit: int) -> EndpointPage:
        after = decode_cursor(cursor)
        async with self._db.reader() as session:
            rows = await NotificationsRepository(session).list_endpoints(
                tenant_id, after=after, limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
        return EndpointPage(items=[endpoint_out(e) for e in rows], next_cursor=next_cursor)

    async def update(self, tenant_id: str, endpoint_id: str, patch: EndpointPatch) -> EndpointOut:
        changes = patch.model_dump(exclude_unset=True)
        if "url" in changes and patch.url is None:
            raise invalid("body.url", "url cannot be removed")
        if "enabled" in changes and patch.enabled is None:
            raise invalid("body.enabled", "enabled must be true or false")
        self._check_filters(patch.payload_filter)
        self._check_headers(patch.headers)
        if patch.url is not None:
            await self._check_url(str(patch.url))
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            endpoint = await repository.endpoint(tenant_id, endpoint_id)
            if endpoint is None:
                raise not_found(endpoint_id)
            now = self._clock.now()
            if patch.url is not None:
                endpoint.url = str(patch.url)
            if "description" in changes:
                endpoint.description = patch.description
            if patch.event_types is not None:
                endpoint.event_types = list(dict.fromkeys(patch.event_types))
            if "payload_filter" in changes:
                endpoint.payload_filter = patch.payload_filter or None
            if "rate_limit_per_second" in changes:
                endpoint.rate_limit_per_second = patch.rate_limit_per_second
            if patch.headers is not None:
                endpoint.headers = dict(patch.headers)
            if patch.enabled is not None and patch.enabled != endpoint.enabled:
                if patch.enabled:
                    endpoint.enabled, endpoint.disabled_reason = True, None
                    endpoint.failing_since = None
                else:
                    disabled = await repository.run_core(
                        functools.partial(
                            disable_endpoint, endpoint=endpoint, reason="operator", now=now
                        )
                    )
                    await self._runtime.outbox.add(session, disabled)
                    await session.refresh(endpoint)
            endpoint.updated_at = now
        return endpoint_out(endpoint)

    async def delete(self, tenant_id: str, endpoint_id: str) -> None:
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            endpoint = await repository.endpoint(tenant_id, endpoint_id)
            if endpoint is None:
                raise not_found(endpoint_id)
            now = self._clock.now()
            await repository.run_core(
                lambda connection: DeliveryOutcomes(connection).cancel_pending(
                    endpoint_id, "endpoint deleted", now
                )
            )
            await repository.delete(endpoint)
        log.info("endpoint.deleted", endpoint_id=endpoint_id)

    async def rotate_secret(self, tenant_id: str, endpoint_id: str) -> SecretRotated:
        secret = new_secret()
        now = self._clock.now()
        expires = now + timedelta(hours=self._settings.webhook_secret_overlap_hours)
        async with self._db.transaction() as session:
            endpoint = await NotificationsRepository(session).endpoint(tenant_id, endpoint_id)
            if endpoint is None:
                raise not_found(endpoint_id)
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_secret_expires_at = expires
            endpoint.secret = self._box.seal(secret)
            endpoint.updated_at = now
        log.info(
            "endpoint.secret.rotated", endpoint_id=endpoint_id, overlap_until=expires.isoformat()
        )
        return SecretRotated(secret=secret, previous_secret_expires_at=expires)

    async def send_test(self, tenant_id: str, endpoint_id: str) -> TestSent:
        now = self._clock.now()
        event = webhook_test(tenant_id, endpoint_id, now)
        async with self._db.transaction() as session:
            repository = NotificationsRepository(session)
            if await repository.endpoint(tenant_id, endpoint_id) is None:
                raise not_found(endpoint_id)
            delivery = new_delivery(tenant_id, event.id, "webhook", now, endpoint_id)
            repository.add(
                Message(
                    id=event.id,
                    tenant_id=tenant_id,
                    event_type=event.type,
                    kind="test",
                    goal_id=None,
                    correlation_id=event.correlationid,
                    payload=event.to_json(),
                    routing=[
                        {
                            "channel": "webhook",
                            "target": endpoint_id,
                            "matched": True,
                            "reason": "matched",
                            "detail": "test event",
                        }
                    ],
                    event_time=now,
                    created_at=now,
                )
            )
            await repository.flush()
            repository.add(delivery)
        self._wake.set()
        return TestSent(message_id=event.id, delivery_id=delivery.id)

    async def stats(self, tenant_id: str, endpoint_id: str, hours: float = 24.0) -> EndpointStats:
        since: datetime = self._clock.now() - timedelta(hours=hours)
        async with self._db.reader() as session:
            repository = NotificationsRepository(session)
            if await repository.endpoint(tenant_id, endpoint_id) is None:
                raise not_found(endpoint_id)
            attempts = await repository.attempts_since(endpoint_id, since, STATS_SAMPLE)
        succeeded = sum(1 for ok, _ in attempts if ok)
        latencies = [latency for _, latency in attempts if latency is not None]
        return EndpointStats(
            endpoint_id=endpoint_id,
            window_hours=hours,
            attempts=len(attempts),
            succeeded=succeeded,
            failed=len(attempts) - succeeded,
            success_rate=round(succeeded / len(attempts), 4) if attempts else None,
            median_latency_ms=round(statistics.median(latencies), 3) if latencies else None,
        )
