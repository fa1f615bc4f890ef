"""Fixtures for goals tests: the app served over real HTTP on its own database and topics.

Time is a ``ManualClock`` that starts at a fixed instant, so "today", due
dates and the overdue timer are the same on every run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.goals.app import create_app
from services.goals.settings import GoalsSettings
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.events import CloudEvent
from tests.support.apps import serving
from tests.support.kafka import read_events

NOW = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)  # a Monday


def goal_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Run a half marathon",
        "participants": [
            {
                "role": "mentee",
                "name": "Ada",
                "email": "ada@example.com",
                "timezone": "Europe/Berlin",
            },
            {"role": "mentor", "name": "Grace", "email": "grace@example.com"},
        ],
        "policy": {
            "cadence": {"kind": "weekly", "weekdays": ["MO", "TH"]},
            "timezone": "Europe/Berlin",
            "escalation": [{"after_misses": 2, "notify_roles": ["mentor"]}],
        },
        "milestones": [{"title": "Run 10 km", "due_date": "2030-02-01"}],
    }
    body.update(overrides)
    return body


@dataclass
class GoalsApi:
    http: httpx.AsyncClient
    app: FastAPI
    clock: ManualClock
    broker: TansuBroker
    topic: str

    async def create(self, **overrides: Any) -> dict[str, Any]:
        response = await self.http.post("/v1/goals", json=goal_body(**overrides))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def events(
        self, until: Callable[[list[CloudEvent]], bool], timeout: float = 30
    ) -> list[CloudEvent]:
        """Everything published on the goals topic, read back from the broker."""
        return await read_events(
            self.broker.bootstrap_servers, self.topic, until=until, timeout=timeout
        )

    async def events_of(self, goal_id: str, count: int) -> list[CloudEvent]:
        events = await self.events(lambda evs: sum(e.partitionkey == goal_id for e in evs) >= count)
        return [e for e in events if e.partitionkey == goal_id]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def goals_settings(settings_for: Callable[..., Any]) -> GoalsSettings:
    settings: GoalsSettings = settings_for(GoalsSettings, overdue_poll_seconds=60)
    return settings


@pytest.fixture
async def goals(
    goals_settings: GoalsSettings,
    clock: ManualClock,
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> AsyncIterator[GoalsApi]:
    app = create_app(goals_settings, clock=clock)
    async with (
        serving(app) as url,
        httpx.AsyncClient(base_url=url, headers=auth_headers(), timeout=30) as http,
    ):
        yield GoalsApi(http, app, clock, broker, f"{topic_prefix}goals")
