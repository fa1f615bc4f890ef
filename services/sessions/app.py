"""Composition root of the sessions service: builds the runtime, services and app from settings.

The clock is injected here, so tests hand in a ``ManualClock`` and drive
months of schedule in seconds; everything that reads time (planning,
firing, check-in windows, forecasts) gets it from this one clock.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.sessions.api import router
from services.sessions.calendars.service import CalendarService
from services.sessions.coaching import CoachingService
from services.sessions.forecast import ForecastService
from services.sessions.intake import GoalEventHandler
from services.sessions.models import Base
from services.sessions.privacy.erasure import SessionsErasure
from services.sessions.privacy.export import SessionsExport
from services.sessions.ranking import RiskRanking
from services.sessions.retention import sessions_rules
from services.sessions.service import CheckinService
from services.sessions.settings import SessionsSettings
from services.sessions.timers.planner import Rules
from services.sessions.timers.scheduler import Scheduler
from shared.clock import Clock, SystemClock
from shared.events.catalog.goals import GOALS_TOPIC
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
    {"name": "check-ins", "description": "Check-ins, adherence and risk."},
    {"name": "schedule", "description": "Forecast, acknowledge a miss, snooze a check-in."},
    {"name": "coaching sessions", "description": "Scheduled sessions and their outcomes."},
    {"name": "calendars", "description": "iCalendar feeds of check-ins and sessions."},
    {"name": "signed links", "description": "Actions from email links, without a credential."},
]


def create_app(settings: SessionsSettings, clock: Clock | None = None) -> FastAPI:
    clock = clock or SystemClock()
    goals_topic = settings.topic(GOALS_TOPIC)
    privacy_topic = settings.topic(PRIVACY_TOPIC)
    runtime = ServiceRuntime(
        settings,
        service="sessions",
        metadata=Base.metadata,
        migrations=MIGRATIONS,
        topics=[
            settings.topic(SESSIONS_TOPIC),
            goals_topic,
            dlq_topic(goals_topic),
            privacy_topic,
            dlq_topic(privacy_topic),
        ],
    )
    rules = Rules.from_settings(settings)
    scheduler = Scheduler(
        database=runtime.database, outbox=runtime.outbox, clock=clock, settings=settings
    )
    if settings.scheduler_enabled:
        runtime.add(scheduler)
    runtime.add(
        ConsumerRunner(
            settings,
            topics=[goals_topic],
            group_id=settings.group(settings.consumer_group),
            handler=GoalEventHandler(
                runtime.database,
                runtime.outbox,
                clock,
                rules,
                on_timers_changed=scheduler.wake,
            ),
            producer=runtime.producer,
            service="sessions",
            dead_letters=runtime.dead_letters,
            broker=runtime.broker,
        )
    )
    runtime.add(
        ConsumerRunner(
            settings,
            topics=[privacy_topic],
            group_id=settings.group(f"{settings.consumer_group}-privacy"),
            handler=SessionsErasure(
                runtime.database,
                runtime.outbox,
                clock,
                settings.privacy_key.get_secret_value(),
            ),
            producer=runtime.producer,
            service="sessions",
            dead_letters=runtime.dead_letters,
            broker=runtime.broker,
            fetch_max_wait_ms=QUIET_TOPIC_FETCH_WAIT_MS,
        )
    )
    retention = build_purger(runtime, clock, sessions_rules())
    app = create_service_app(
        runtime,
        title="Followthrough sessions",
        description="Check-in schedules, reminders, misses, escalation and coaching sessions.",
        routers=[router, retention_router, part_router("sessions")],
        tags=TAGS,
    )
    app.state.clock = clock
    app.state.scheduler = scheduler
    app.state.checkins = CheckinService(runtime, clock=clock, rules=rules, wake=scheduler.wake)
    app.state.coaching = CoachingService(runtime, clock=clock, rules=rules, wake=scheduler.wake)
    app.state.forecasts = ForecastService(runtime, clock=clock, rules=rules, wake=scheduler.wake)
    app.state.ranking = RiskRanking(runtime, clock=clock)
    app.state.retention = retention
    app.state.person_export = SessionsExport(runtime.database)
    app.state.calendars = CalendarService(runtime, clock=clock, rules=rules, settings=settings)
    return app
