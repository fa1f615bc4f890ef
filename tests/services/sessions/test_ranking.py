"""``GET /v1/goals?order=risk``: the tenant's goals, highest risk first, paged, per tenant.

Real HTTP, the real broker feeding the projection, a manual clock that lets
a check-in deadline pass, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.sessions.settings import SessionsSettings
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

START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # Sunday
AFTER_MONDAY_DEADLINE = datetime(2026, 3, 2, 10, 1, tzinfo=UTC)  # 09:00 Berlin + 2 h grace


async def test_goals_rank_by_risk_with_pages_status_filter_and_tenancy(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    missed, overdue, quiet, closed, foreign = (new_goal_id() for _ in range(5))
    late_milestones = [
        {"milestone_id": new_goal_id(), "title": f"Step {n}", "due_date": "2026-02-20"}
        for n in (1, 2)
    ]
    events = [
        goal_event(snapshot(missed, policy=weekly(["MO"]), at=START), at=START),
        goal_event(snapshot(overdue, milestones=late_milestones, at=START), at=START),
        goal_event(snapshot(quiet, at=START), at=START),
        goal_event(snapshot(closed, status="completed", at=START), at=START),
        goal_event(snapshot(foreign, policy=weekly(["MO"]), at=START), tenant="globex", at=START),
    ]
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(broker.bootstrap_servers, f"{topic_prefix}goals", events)
        for goal_id in (missed, overdue, quiet, closed, foreign):
            await app.wait_projected(goal_id)
        await app.step_to(AFTER_MONDAY_DEADLINE)  # the weekly goals miss Monday's check-in

        everything = await app.http.get("/v1/goals?order=risk", headers=app.headers)
        assert everything.status_code == 200, everything.text
        items = everything.json()["items"]
        assert [item["goal_id"] for item in items[:2]] == [overdue, missed]
        assert {item["goal_id"] for item in items} == {missed, overdue, quiet, closed}
        by_id = {item["goal_id"]: item for item in items}
        assert by_id[overdue]["risk"]["factors"]["overdue_milestones"] == 20.0
        assert by_id[missed]["consecutive_misses"] == 1
        assert by_id[missed]["risk"]["factors"]["consecutive_misses"] > 0
        assert by_id[missed]["mentee"] == "Ada"
        assert by_id[quiet]["risk"]["score"] == 0
        scores = [item["risk"]["score"] for item in items]
        assert scores == sorted(scores, reverse=True)

        # The same score as the goal's own check-in history shows.
        history = await app.http.get(f"/v1/goals/{missed}/checkins", headers=app.headers)
        assert history.json()["risk"] == by_id[missed]["risk"]

        paged: list[str] = []
        cursor: str | None = None
        while True:
            query = "/v1/goals?order=risk&status=active&limit=1"
            page = await app.http.get(
                query + (f"&cursor={cursor}" if cursor else ""), headers=app.headers
            )
            assert page.status_code == 200, page.text
            body = page.json()
            paged += [item["goal_id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert paged[:2] == [overdue, missed]
        assert sorted(paged) == sorted([missed, overdue, quiet])  # not the completed one

        theirs = await app.http.get("/v1/goals", headers=auth_headers("globex"))
        assert [item["goal_id"] for item in theirs.json()["items"]] == [foreign]

        bad = await app.http.get("/v1/goals?cursor=bm90LWEtY3Vyc29y", headers=app.headers)
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["errors"][0]["field"] == "query.cursor"
        wrong_order = await app.http.get("/v1/goals?order=title", headers=app.headers)
        assert wrong_order.status_code == 422
        unauthorised = await app.http.get("/v1/goals")
        assert unauthorised.status_code == 401
