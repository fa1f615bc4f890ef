"""Composition root of the sessions service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.sessions.events import GoalEventHandler
from services.sessions.models import Base
from services.sessions.settings import SessionsSettings
from shared.events.catalog.goals import GOALS_TOPIC
from shared.events.catalog.sessions import SESSIONS_TOPIC
from shared.http.app import create_service_app
from shared.kafka.config import dlq_topic
from shared.kafka.consumer import ConsumerRunner
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


def create_app(settings: SessionsSettings) -> FastAPI:
    goals_topic = settings.topic(GOALS_TOPIC)
    runtime = ServiceRuntime(
        settings,
        service="sessions",
        metadata=Base.metadata,
        migrations=MIGRATIONS,
        topics=[settings.topic(SESSIONS_TOPIC), goals_topic, dlq_topic(goals_topic)],
    )
    runtime.add(
        ConsumerRunner(
            settings,
            topics=[goals_topic],
            group_id=settings.consumer_group,
            handler=GoalEventHandler(runtime.database),
            producer=runtime.producer,
            service="sessions",
        )
    )
    return create_service_app(
        runtime,
        title="Followthrough sessions",
        description="Check-in schedules, reminders, misses, escalation and coaching sessions.",
    )
