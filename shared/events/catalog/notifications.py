"""Events the notifications service emits (topic ``notifications``), and the webhook test event."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.catalog.common import Identifier
from shared.events.envelope import CloudEvent, EventData

NOTIFICATIONS_TOPIC = "notifications"

Channel = Literal["webhook", "email"]


class NotificationOutcomeData(EventData):
    message_id: Identifier
    delivery_id: Identifier
    event_id: Identifier = Field(description="The domain event this notification was about.")
    event_type: str
    goal_id: str | None = None
    channel: Channel
    target: str = Field(description="Endpoint id for webhooks, recipient role for email.")
    attempts: int = Field(ge=1)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)


class EndpointDisabledData(EventData):
    endpoint_id: Identifier
    url: str
    reason: Literal["failing", "gone", "operator"]
    failing_since: datetime | None = None


class WebhookTestData(EventData):
    endpoint_id: Identifier
    message: str = "This is a test event from Followthrough."


class _NotificationsTopicEvent(CloudEvent):
    topic: ClassVar[str] = NOTIFICATIONS_TOPIC


class NotificationSent(_NotificationsTopicEvent):
    type: Literal["notification.sent"] = "notification.sent"
    data: NotificationOutcomeData


class NotificationFailed(_NotificationsTopicEvent):
    type: Literal["notification.failed"] = "notification.failed"
    data: NotificationOutcomeData


class EndpointDisabled(_NotificationsTopicEvent):
    type: Literal["endpoint.disabled"] = "endpoint.disabled"
    data: EndpointDisabledData


class WebhookTest(_NotificationsTopicEvent):
    """Sent only to one endpoint by its test call; never published to Kafka."""

    type: Literal["webhook.test"] = "webhook.test"
    data: WebhookTestData


NOTIFICATION_EVENTS: tuple[type[CloudEvent], ...] = (
    NotificationSent,
    NotificationFailed,
    EndpointDisabled,
    WebhookTest,
)
