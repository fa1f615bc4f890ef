"""Schemathesis against the sessions OpenAPI, over real HTTP on both databases (bounded run).

Every /v1 operation gets generated requests, from its schema and documented examples; no
answer may be a 5xx and every answer must match the document (status, content type,
headers, body schema). Path ids are sometimes swapped for a real goal (with a missed
check-in, so acknowledge can succeed) and a real coaching session of the caller's tenant,
and a body's goal_id likewise, so operations get past 404 and really run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sessions.settings import SessionsSettings
from shared.auth.tokens import TENANT_ADMIN_SCOPE, TENANT_SCOPES
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from tests.services.sessions.support import (
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    weekly,
)
from tests.support.openapi_fuzz import fuzz

EXAMPLES_PER_OPERATION = 15
START = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_every_operation_answers_per_the_document(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    policy = weekly(
        ["MO", "WE", "FR"], escalation=[{"after_misses": 1, "notify_roles": ["mentor"]}]
    )
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [goal_event(snapshot(goal_id, policy=policy, at=START), at=START)],
        )
        await app.wait_projected(goal_id)
        session = await app.http.post(
            "/v1/sessions",
            json={
                "goal_id": goal_id,
                "starts_at": (START + timedelta(days=3)).isoformat(),
                "duration_minutes": 30,
                "location": "Room 1",
            },
            headers=app.headers,
        )
        assert session.status_code == 201, session.text
        # Monday's check-in is missed, so acknowledge has something to act on.
        await app.step_to(START + timedelta(days=1, hours=2))
        known = {"goal_id": goal_id, "session_id": session.json()["id"]}
        failures, answered = await asyncio.to_thread(
            fuzz,
            app.app.openapi(),
            str(app.http.base_url).rstrip("/"),
            auth_headers("acme", (*TENANT_SCOPES, TENANT_ADMIN_SCOPE)),
            known,
            examples_per_operation=EXAMPLES_PER_OPERATION,
            body_fields=("goal_id",),
        )
    assert not failures, "\n\n".join(failures)
    # 19 of its own, 2 dead-letter routes, 2 retention routes, its part of a person's export
    assert len(answered) == 24, sorted(answered)
    succeeded = [label for label, statuses in answered.items() if any(s < 300 for s in statuses)]
    assert len(succeeded) >= 8, dict(answered)
