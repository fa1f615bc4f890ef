"""Building the events the notifications service emits.

It consumes every domain topic (``intake.py`` turns each event into a message
and its deliveries) and emits what became of them: ``notification.sent`` or
``notification.failed`` once a delivery is final, ``endpoint.disabled`` when
an endpoint is switched off, and ``webhook.test`` for one endpoint on request.
Outcomes are keyed by the goal they are about, so they follow that goal's
events in order; an endpoint's own events are keyed by the endpoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from services.notifications.models import Endpoint, Message
from services.notifications.webhooks.sender import AttemptResult
from shared.events.catalog.notifications import (
    EndpointDisabled,
    EndpointDisabledData,
    NotificationFailed,
    NotificationOutcomeData,
    NotificationSent,
    WebhookTest,
    WebhookTestData,
)
from shared.events.registry import build_event

SOURCE = "/followthrough/notifications"
DISABLE_REASONS: dict[str, Literal["failing", "gone", "operator"]] = {
    "failing": "failing",
    "gone": "gone",
    "operator": "operator",
}


def delivery_outcome(
    cls: type[NotificationSent] | type[NotificationFailed],
    *,
    message: Message,
    delivery_id: str,
    channel: str,
    endpoint: Endpoint | None,
    recipient: dict[str, object] | None,
    attempts: int,
    result: AttemptResult,
) -> NotificationSent | NotificationFailed:
    """What became of one delivery, caused by the event it delivered."""
    target = endpoint.id if endpoint else ""
    if channel == "email" and recipient:
        target = str(recipient.get("role", "recipient"))
    return build_event(
        cls,
        NotificationOutcomeData(
            message_id=message.id,
            delivery_id=delivery_id,
            event_id=message.id,
            event_type=message.event_type,
            goal_id=message.goal_id,
            channel="email" if channel == "email" else "webhook",
            target=target or "unknown",
            attempts=attempts,
            last_status_code=result.status_code,
            last_error=(result.error or "")[:500] or None,
        ),
        tenant_id=message.tenant_id,
        partition_key=message.goal_id or target or message.id,
        source=SOURCE,
        correlation_id=message.correlation_id,
        causation_id=message.id if message.kind == "event" else None,
    )


def endpoint_disabled(endpoint: Endpoint, reason: str) -> EndpointDisabled:
    return build_event(
        EndpointDisabled,
        EndpointDisabledData(
            endpoint_id=endpoint.id,
            url=endpoint.url,
            reason=DISABLE_REASONS.get(reason, "operator"),
            failing_since=endpoint.failing_since,
        ),
        tenant_id=endpoint.tenant_id,
        partition_key=endpoint.id,
        source=SOURCE,
    )


def webhook_test(tenant_id: str, endpoint_id: str, now: datetime) -> WebhookTest:
    return build_event(
        WebhookTest,
        WebhookTestData(endpoint_id=endpoint_id),
        tenant_id=tenant_id,
        partition_key=endpoint_id,
        source=SOURCE,
        time=now,
    )
