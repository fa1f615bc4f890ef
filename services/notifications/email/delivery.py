"""One email attempt: honour unsubscribes and quiet hours, render, send over the SMTP pool."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from services.notifications.delivery.outcomes import Claimed, OutcomeRecorder
from services.notifications.email.invites import invite_for
from services.notifications.email.render import EmailRenderer, TemplateOverride, compose
from services.notifications.email.repository import EmailRepository
from services.notifications.email.rules import QuietHours
from services.notifications.email.smtp import SmtpPool
from services.notifications.models import Delivery
from services.notifications.repository import PENDING
from services.notifications.settings import NotificationsSettings
from services.notifications.webhooks.sender import AttemptResult
from shared import metrics
from shared.clock import Clock
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)
SUPPRESSED = "suppressed"


def template_context(
    payload: dict[str, Any], recipient: dict[str, Any], links: dict[str, str | None]
) -> dict[str, Any]:
    data = payload.get("data") or {}
    goal = data.get("goal") or {"title": "your goals", "participants": []}
    mentee = next((p for p in goal.get("participants", []) if p.get("role") == "mentee"), None)
    return {
        "event": {
            "id": payload.get("id"),
            "type": payload.get("type"),
            "time": payload.get("time"),
            "tenant": payload.get("tenantid"),
        },
        "data": data,
        "goal": goal,
        "mentee": mentee,
        "recipient": recipient,
        "links": links,
        "digest": payload.get("digest"),
    }


def occurrence_of(payload: dict[str, Any]) -> str | None:
    """The check-in occurrence an event is about, if any (the action links name it)."""
    occurrence = (payload.get("data") or {}).get("occurrence") or {}
    found = occurrence.get("occurrence_id") if isinstance(occurrence, dict) else None
    return found if isinstance(found, str) else None


class EmailDelivery:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: NotificationsSettings,
        clock: Clock,
        pool: SmtpPool,
        recorder: OutcomeRecorder,
    ) -> None:
        self._db = runtime.database
        self._settings = settings
        self._clock = clock
        self._pool = pool
        self._recorder = recorder
        self._renderer = EmailRenderer(settings)

    async def attempt(self, claimed: Claimed, sent: Callable[[], None] | None = None) -> None:
        """Render and send one email; ``sent`` is called once the SMTP exchange is over."""
        message, recipient = claimed.message, dict(claimed.recipient or {})
        email = str(recipient.get("email", ""))
        now = self._clock.now()
        window = recipient.get("quiet")
        quiet = QuietHours.parse(*window) if isinstance(window, list) and len(window) == 2 else None
        zone = str(recipient.get("timezone") or "UTC")
        release = quiet.release_time(now, zone) if quiet else None
        if release is not None:
            await self._set(claimed.delivery_id, next_attempt_at=release)
            log.info(
                "email.quiet_hours.delayed",
                delivery_id=claimed.delivery_id,
                until=release.isoformat(),
            )
            return
        async with self._db.reader() as session:
            repository = EmailRepository(session)
            unsubscribed = await repository.is_unsubscribed(
                message.tenant_id, email, message.event_type
            )
            override = await repository.template(message.tenant_id, message.event_type)
        if unsubscribed:
            await self._set(claimed.delivery_id, status=SUPPRESSED, last_error="unsubscribed")
            metrics.DELIVERIES.labels("notifications", "email", SUPPRESSED).inc()
            log.info("email.suppressed", delivery_id=claimed.delivery_id, reason="unsubscribed")
            return
        payload: dict[str, Any] = json.loads(message.payload)
        links = self._renderer.links(
            tenant_id=message.tenant_id,
            event_type=message.event_type,
            recipient=recipient,
            goal_id=message.goal_id,
            occurrence_id=occurrence_of(payload),
            now=now,
        )
        rendered = self._renderer.render(
            message.event_type,
            template_context(payload, recipient, links),
            TemplateOverride(override.subject, override.text, override.html) if override else None,
        )
        mime = compose(
            settings=self._settings,
            rendered=rendered,
            recipient=recipient,
            unsubscribe_url=str(links["unsubscribe"]),
            message_id=claimed.delivery_id,
            event_id=message.id,
            event_type=message.event_type,
            now=now,
            invite=invite_for(message.event_type, payload, sender=self._settings.email_from),
        )
        started_at = self._clock.now()
        started = time.perf_counter()
        outcome = await self._pool.send(mime)
        latency = (time.perf_counter() - started) * 1000
        if sent is not None:
            sent()
        result = AttemptResult(
            succeeded=outcome.succeeded,
            status_code=outcome.code,
            latency_ms=latency,
            error=outcome.error,
            excerpt=None,
            abort=outcome.permanent,
        )
        await self._recorder.record(claimed, result, started_at)

    async def _set(self, delivery_id: str, **values: Any) -> None:
        values.setdefault("locked_until", None)
        values["updated_at"] = self._clock.now()
        async with self._db.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == PENDING)
                .values(**values)
            )
