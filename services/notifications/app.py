"""Composition root of the notifications service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.notifications.api import router
from services.notifications.dispatcher import Dispatcher
from services.notifications.intake import IntakeHandler
from services.notifications.models import Base
from services.notifications.service import EndpointsService
from services.notifications.settings import NotificationsSettings
from services.notifications.webhook_sender import WebhookSender
from shared.clock import Clock, SystemClock
from shared.events.catalog.goals import GOALS_TOPIC
from shared.events.catalog.notifications import NOTIFICATIONS_TOPIC
from shared.events.catalog.sessions import SESSIONS_TOPIC
from shared.http.app import create_service_app
from shared.kafka.config import dlq_topic
from shared.kafka.consumer import ConsumerRunner
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


def create_app(settings: NotificationsSettings, *, clock: Clock | None = None) -> FastAPI:
    consumed = [settings.topic(GOALS_TOPIC), settings.topic(SESSIONS_TOPIC)]
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
    dispatcher = Dispatcher(
        runtime,
        settings,
        WebhookSender(timeout=settings.webhook_timeout_seconds),
        clock or SystemClock(),
    )
    runtime.add(dispatcher)
    runtime.add(
        ConsumerRunner(
            settings,
            topics=consumed,
            group_id=settings.consumer_group,
            handler=IntakeHandler(runtime.database, dispatcher.wake),
            producer=runtime.producer,
            service="notifications",
        )
    )
    app = create_service_app(
        runtime,
        title="Followthrough notifications",
        description="Webhook endpoints and email rules; messages, deliveries and attempts.",
        routers=[router],
    )
    app.state.endpoints = EndpointsService(runtime, settings)
    return app
