"""Composition root of the notifications service: builds every part from settings, once."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.notifications import api
from services.notifications.delivery.dispatcher import Dispatcher
from services.notifications.email.digest import DigestScheduler
from services.notifications.email.service import EmailConfigService
from services.notifications.email.smtp import SmtpPool
from services.notifications.intake import IntakeHandler
from services.notifications.models import Base
from services.notifications.operations import OperationsService
from services.notifications.privacy.erasure import NotificationsErasure
from services.notifications.privacy.export import NotificationsExport
from services.notifications.privacy.suppression import SuppressionCheck
from services.notifications.retention import notifications_rules
from services.notifications.routing import track_routing_changes
from services.notifications.service import EndpointsService
from services.notifications.settings import NotificationsSettings
from services.notifications.webhooks.sender import WebhookSender
from services.notifications.webhooks.signing import SecretBox
from services.notifications.webhooks.ssrf import AddressPolicy, Guard, Resolver, system_resolver
from shared.clock import Clock, SystemClock
from shared.events.catalog.goals import GOALS_TOPIC
from shared.events.catalog.notifications import NOTIFICATIONS_TOPIC
from shared.events.catalog.privacy import PRIVACY_TOPIC
from shared.events.catalog.sessions import SESSIONS_TOPIC
from shared.http.app import create_service_app
from shared.kafka.config import dlq_topic
from shared.kafka.consumer import QUIET_TOPIC_FETCH_WAIT_MS, ConsumerRunner
from shared.privacy.api import part_router
from shared.retention.api import router as retention_router
from shared.retention.setup import build_purger
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
TAGS = [
    {"name": "endpoints", "description": "Webhook endpoints, their secrets and statistics."},
    {"name": "operations", "description": "Messages, deliveries, attempts, replay and routing."},
    {"name": "email", "description": "Email rules, templates, preferences and unsubscribe."},
]


def create_app(
    settings: NotificationsSettings,
    *,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
) -> FastAPI:
    """Build the service. ``clock`` drives retries and digests; ``resolver`` plays DNS in tests."""
    track_routing_changes()  # every replica's routing cache learns of this one's changes
    clock = clock or SystemClock()
    # The privacy topic too: integrators' endpoints hear of erasures, to forget the person.
    consumed = [
        settings.topic(GOALS_TOPIC),
        settings.topic(SESSIONS_TOPIC),
        settings.topic(PRIVACY_TOPIC),
    ]
    runtime = ServiceRuntime(
        settings,
        service="notifications",
        metadata=Base.metadata,
        migrations=MIGRATIONS,
        topics=[
            settings.topic(NOTIFICATIONS_TOPIC),
            *consumed,
            *(dlq_topic(topic) for topic in consumed),
        ],
    )
    privacy_key = settings.privacy_key.get_secret_value()
    guard = Guard(AddressPolicy(settings.webhook_allowed_networks), resolver or system_resolver)
    box = SecretBox(settings.secrets_key.get_secret_value())
    sender = WebhookSender(
        guard,
        timeout=settings.webhook_timeout_seconds,
        connect_timeout=settings.webhook_connect_timeout_seconds,
        max_response_bytes=settings.webhook_max_response_bytes,
        ca_file=str(settings.webhook_ca_file) if settings.webhook_ca_file else None,
    )
    smtp = SmtpPool(settings)
    dispatcher = runtime.add(Dispatcher(runtime, settings, sender, smtp, box, clock))
    digest = runtime.add(DigestScheduler(runtime.database, settings, clock, dispatcher.wake))
    # Only the domain topics are consumed: notification.* events are never routed back into
    # webhooks or email, so a failing endpoint can never feed itself notifications about failing.
    runtime.add(
        ConsumerRunner(
            settings,
            topics=consumed,
            group_id=settings.group(settings.consumer_group),
            handler=IntakeHandler(
                runtime.database,
                dispatcher.wake,
                clock,
                first_webhook_delay=settings.webhook_retry_schedule_seconds[0],
                first_email_delay=settings.email_retry_schedule_seconds[0],
                handoff=dispatcher,
                suppression=SuppressionCheck(privacy_key),
            ),
            producer=runtime.producer,
            service="notifications",
            dead_letters=runtime.dead_letters,
            broker=runtime.broker,
        )
    )
    runtime.add(
        ConsumerRunner(
            settings,
            topics=[settings.topic(PRIVACY_TOPIC)],
            group_id=settings.group(f"{settings.consumer_group}-privacy"),
            handler=NotificationsErasure(runtime.database, runtime.outbox, clock, privacy_key),
            producer=runtime.producer,
            service="notifications",
            dead_letters=runtime.dead_letters,
            broker=runtime.broker,
            fetch_max_wait_ms=QUIET_TOPIC_FETCH_WAIT_MS,
        )
    )
    retention = build_purger(runtime, clock, notifications_rules())
    app = create_service_app(
        runtime,
        title="Followthrough notifications",
        description="Webhook endpoints and email rules; messages, deliveries and attempts.",
        routers=[api.router, retention_router, part_router("notifications")],
        tags=TAGS,
    )
    app.state.endpoints = EndpointsService(runtime, settings, guard, box, clock, dispatcher.wake)
    app.state.operations = OperationsService(runtime, clock, dispatcher.wake)
    app.state.email = EmailConfigService(runtime, settings, clock)
    app.state.dispatcher = dispatcher
    app.state.digest = digest
    app.state.smtp = smtp
    app.state.retention = retention
    app.state.person_export = NotificationsExport(runtime.database, privacy_key)
    return app
