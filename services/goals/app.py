"""Composition root of the goals service: builds the runtime and the app from settings."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.goals.api import router
from services.goals.models import Base
from services.goals.service import GoalsService
from services.goals.settings import GoalsSettings
from shared.events.catalog.goals import GOALS_TOPIC
from shared.http.app import create_service_app
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"


def create_app(settings: GoalsSettings) -> FastAPI:
    runtime = ServiceRuntime(
        settings,
        service="goals",
        metadata=Base.metadata,
        migrations=MIGRATIONS,
        topics=[settings.topic(GOALS_TOPIC)],
    )
    app = create_service_app(
        runtime,
        title="Followthrough goals",
        description="Goals, milestones, participants, check-in policies and progress.",
        routers=[router],
    )
    app.state.goals = GoalsService(runtime)
    return app
