"""The goals app served in-process over real HTTP, with its events read back from the broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from services.goals.app import create_app
from services.goals.settings import GoalsSettings
from shared.devstack.broker import TansuBroker
from shared.events.catalog.goals import GoalCreated
from tests.support.apps import serving
from tests.support.kafka import read_events

GOAL = {
    "title": "Ship the thesis",
    "participants": [
        {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "Europe/Berlin"}
    ],
}


async def test_created_goal_is_published_with_request_correlation(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    app = create_app(settings_for(GoalsSettings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/v1/goals", json=GOAL, headers={**auth_headers(), "X-Correlation-ID": "corr-123"}
        )
        assert response.status_code == 201, response.text
        goal_id = response.json()["id"]
        events = await read_events(
            broker.bootstrap_servers, f"{topic_prefix}goals", until=lambda events: len(events) >= 1
        )
    (event,) = events
    assert isinstance(event, GoalCreated)
    assert event.data.goal.goal_id == goal_id
    assert event.correlationid == "corr-123"
    assert event.tenantid == "acme"
