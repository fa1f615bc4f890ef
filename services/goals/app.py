"""Composition root of the goals service: builds the runtime, timer and app from settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.goals.api import router
from services.goals.api.ingest import BATCH_COMPONENTS
from services.goals.ingest.service import BatchIngestor
from services.goals.models import Base
from services.goals.privacy.confirmations import ErasureConfirmations
from services.goals.privacy.export import PeopleExport
from services.goals.privacy.service import ErasureService
from services.goals.retention import goals_rules
from services.goals.scheduler import OverdueTimer
from services.goals.service import GoalsService
from services.goals.settings import GoalsSettings
from shared.clock import Clock, SystemClock
from shared.events.catalog.goals import GOALS_TOPIC
from shared.events.catalog.privacy import PRIVACY_TOPIC
from shared.http.app import create_service_app
from shared.kafka.config import dlq_topic
from shared.kafka.consumer import QUIET_TOPIC_FETCH_WAIT_MS, ConsumerRunner
from shared.retention.api import router as retention_router
from shared.retention.setup import build_purger
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
DESCRIPTION = """Goals, milestones, participants, check-in policies and progress.

Every call carries `Authorization: Bearer <token>` (a tenant credential with
`goals:read` / `goals:write`). Writes answer with the goal and its `ETag`;
send it back as `If-Match` to make a write fail with 412 if someone else
changed the goal meanwhile. Every POST honours `Idempotency-Key`. Errors are
`application/problem+json` (RFC 9457), naming each bad field in `errors`.
"""


def create_app(settings: GoalsSettings, *, clock: Clock | None = None) -> FastAPI:
    clock = clock or SystemClock()
    privacy_topic = settings.topic(PRIVACY_TOPIC)
    runtime = ServiceRuntime(
        settings,
        service="goals",
        metadata=Base.metadata,
        migrations=MIGRATIONS,
        topics=[settings.topic(GOALS_TOPIC), privacy_topic, dlq_topic(privacy_topic)],
    )
    service = GoalsService(runtime.database, runtime.outbox, clock)
    timer = runtime.add(
        OverdueTimer(
            service,
            clock,
            poll_seconds=settings.overdue_poll_seconds,
            batch_size=settings.overdue_batch_size,
        )
    )
    service.wake_timer = timer.wake.set
    erasures = ErasureService(
        runtime.database,
        runtime.outbox,
        clock,
        privacy_key=settings.privacy_key.get_secret_value(),
        # A dead-lettered copy lives as long as its DLQ topic keeps it.
        topic_retention=timedelta(
            hours=max(settings.kafka_topic_retention_hours, settings.kafka_dlq_retention_hours)
        ),
    )
    runtime.add(
        ConsumerRunner(
            settings,
            topics=[privacy_topic],
            group_id=settings.group("goals-privacy"),
            handler=ErasureConfirmations(runtime.database, erasures),
            producer=runtime.producer,
            service="goals",
            dead_letters=runtime.dead_letters,
            broker=runtime.broker,
            fetch_max_wait_ms=QUIET_TOPIC_FETCH_WAIT_MS,
        )
    )
    retention = build_purger(runtime, clock, goals_rules())
    app = create_service_app(
        runtime,
        title="Followthrough goals",
        description=DESCRIPTION,
        routers=[router, retention_router],
    )
    app.state.goals = service
    app.state.erasures = erasures
    app.state.people_export = PeopleExport(
        runtime.database,
        erasures,
        clock,
        sessions_url=settings.sessions_url,
        notifications_url=settings.notifications_url,
        timeout=settings.export_timeout_seconds,
    )
    app.state.ingestor = BatchIngestor(service)
    app.state.overdue_timer = timer
    _add_batch_components(app)
    app.state.retention = retention
    return app


def _add_batch_components(app: FastAPI) -> None:
    """The ingestion body is documented by hand (it is parsed item by item); add its schemas."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in BATCH_COMPONENTS.items():
            components.setdefault(name, definition)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
