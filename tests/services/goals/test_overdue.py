"""The milestone-overdue timer on a ManualClock: once, at the right instant, by one replica."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select

from services.goals.models import GoalEventRecord
from services.goals.scheduler import OverdueTimer
from services.goals.schemas import GoalCreate
from services.goals.service import GoalsService
from shared import tracing
from shared.db.database import Database
from shared.events.catalog.goals import MilestoneEventData
from shared.outbox.writer import Outbox
from shared.tracing import spans
from tests.services.goals.fixtures import GoalsApi, goal_body


async def _history(goals: GoalsApi, gid: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await goals.http.get(f"/v1/goals/{gid}/events")).json()["items"]
    return items


async def _manual_timer(goals: GoalsApi) -> OverdueTimer:
    """The app's timer, stopped, so the test decides exactly when a pass runs."""
    timer: OverdueTimer = goals.app.state.overdue_timer
    await timer.stop()
    return timer


async def _overdue_count(goals: GoalsApi) -> int:
    database = goals.app.state.runtime.database
    async with database.reader() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(GoalEventRecord)
            .where(GoalEventRecord.event_type == "milestone.overdue")
        )
    return int(count or 0)


def _overdue(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in history if e["type"] == "milestone.overdue"]


async def test_fires_once_at_the_end_of_the_due_date_in_the_goals_zone(goals: GoalsApi) -> None:
    timer = await _manual_timer(goals)
    goal = await goals.create(
        milestones=[{"title": "Run 10 km", "due_date": "2030-01-08"}, {"title": "Later"}]
    )
    gid, mid = goal["id"], goal["milestones"][0]["id"]
    # Midnight after Jan 8 in Berlin is 23:00 UTC on Jan 8.
    await goals.clock.set(datetime(2030, 1, 8, 22, 59, 59, tzinfo=UTC))
    await timer.fire_due()
    assert _overdue(await _history(goals, gid)) == []
    await goals.clock.set(datetime(2030, 1, 8, 23, 0, tzinfo=UTC))
    await timer.fire_due()
    await goals.clock.advance(timedelta(days=3))
    await timer.fire_due()
    fired = _overdue(await _history(goals, gid))
    assert len(fired) == 1
    assert fired[0]["data"]["milestone"]["milestone_id"] == mid
    assert fired[0]["time"] == "2030-01-08T23:00:00Z"
    assert fired[0]["data"]["goal"]["version"] == 1  # an observation, not a change

    events = await goals.events_of(gid, 2)
    assert [e.type for e in events] == ["goal.created", "milestone.overdue"]
    data = events[1].data
    assert isinstance(data, MilestoneEventData)
    assert data.milestone.overdue_at == datetime(2030, 1, 8, 23, 0, tzinfo=UTC)
    assert data.goal.title == "Run a half marathon"
    assert events[1].subject == f"goals/{gid}/milestones/{mid}"


async def test_only_pending_milestones_of_active_goals_fire(goals: GoalsApi) -> None:
    timer = await _manual_timer(goals)
    done = await goals.create(milestones=[{"title": "Done", "due_date": "2030-01-08"}])
    await goals.http.post(
        f"/v1/goals/{done['id']}/milestones/{done['milestones'][0]['id']}/complete"
    )
    paused = await goals.create(milestones=[{"title": "Waits", "due_date": "2030-01-08"}])
    await goals.http.post(f"/v1/goals/{paused['id']}/pause")
    draft = await goals.create(
        status="draft", milestones=[{"title": "D", "due_date": "2030-01-08"}]
    )
    await goals.clock.set(datetime(2030, 1, 10, tzinfo=UTC))
    await timer.fire_due()
    for goal in (done, paused, draft):
        assert _overdue(await _history(goals, goal["id"])) == []
    resumed = await goals.http.post(f"/v1/goals/{paused['id']}/resume")
    assert resumed.status_code == 200
    await timer.fire_due()
    assert len(_overdue(await _history(goals, paused["id"]))) == 1


async def test_a_new_due_date_rearms_the_timer(goals: GoalsApi) -> None:
    timer = await _manual_timer(goals)
    goal = await goals.create(milestones=[{"title": "Run", "due_date": "2030-01-08"}])
    gid, mid = goal["id"], goal["milestones"][0]["id"]
    await goals.clock.set(datetime(2030, 1, 9, tzinfo=UTC))
    await timer.fire_due()
    moved = await goals.http.patch(
        f"/v1/goals/{gid}/milestones/{mid}", json={"due_date": "2030-01-20"}
    )
    assert moved.status_code == 200
    assert moved.json()["milestones"][0]["overdue_at"] == "2030-01-20T23:00:00Z"
    await timer.fire_due()
    assert len(_overdue(await _history(goals, gid))) == 1
    await goals.clock.set(datetime(2030, 1, 21, tzinfo=UTC))
    await timer.fire_due()
    assert len(_overdue(await _history(goals, gid))) == 2


async def test_the_running_timer_wakes_on_time_and_on_change(goals: GoalsApi) -> None:
    goal = await goals.create(milestones=[{"title": "Run", "due_date": "2030-01-08"}])
    await goals.clock.set(datetime(2030, 1, 12, tzinfo=UTC))  # wakes the sleeping timer
    events = await goals.events_of(goal["id"], 2)
    assert events[1].type == "milestone.overdue"
    # A milestone created already overdue wakes it at once, without the clock moving.
    late = await goals.http.post(
        f"/v1/goals/{goal['id']}/milestones", json={"title": "Today", "due_date": "2030-01-12"}
    )
    assert late.status_code == 201
    await goals.clock.set(datetime(2030, 1, 13, 0, 30, tzinfo=UTC))
    events = await goals.events_of(goal["id"], 4)
    assert [e.type for e in events] == [
        "goal.created",
        "milestone.overdue",
        "milestone.created",
        "milestone.overdue",
    ]


async def test_two_replicas_never_fire_one_milestone_twice(goals: GoalsApi) -> None:
    settings = goals.app.state.runtime.settings
    for index in range(24):
        await goals.create(
            external_ref=f"g-{index}",
            milestones=[
                {"title": "a", "due_date": "2030-01-08"},
                {"title": "b", "due_date": "2030-01-09"},
            ],
        )
    # Two replicas of the timer race for the work; the app's own timer stands aside so
    # that "both loops are done" means "everything due is fired and committed".
    own: OverdueTimer = goals.app.state.overdue_timer
    await own.stop()
    await goals.clock.set(datetime(2030, 1, 15, tzinfo=UTC))
    other_db = Database(settings.database_url, pool_size=4)
    try:
        other_service = GoalsService(
            other_db, Outbox(topic_prefix=settings.kafka_topic_prefix), goals.clock
        )
        replicas = [
            OverdueTimer(own._service, goals.clock, batch_size=3),
            OverdueTimer(other_service, goals.clock, batch_size=3),
        ]

        async def drain(timer: OverdueTimer) -> None:
            while await timer.fire_due():
                pass

        await asyncio.gather(*(drain(timer) for timer in replicas))
    finally:
        await other_db.dispose()
    assert await _overdue_count(goals) == 48
    listed = (await goals.http.get("/v1/goals", params={"limit": 100})).json()["items"]
    total = 0
    for goal in listed:
        fired = _overdue(await _history(goals, goal["id"]))
        assert sorted(e["data"]["milestone"]["title"] for e in fired) == ["a", "b"]
        total += len(fired)
    assert total == 48


async def test_the_announcement_continues_the_chain_that_set_the_due_date(
    goals: GoalsApi,
) -> None:
    timer = await _manual_timer(goals)
    created = await goals.http.post(
        "/v1/goals",
        json=goal_body(milestones=[{"title": "Run 10 km", "due_date": "2030-01-08"}]),
        headers={"X-Correlation-ID": "plan-77"},
    )
    assert created.status_code == 201, created.text
    gid = created.json()["id"]
    added = await goals.http.post(
        f"/v1/goals/{gid}/milestones",
        json={"title": "Run 15 km", "due_date": "2030-01-09"},
        headers={"X-Correlation-ID": "plan-78"},
    )
    assert added.status_code == 201, added.text
    await goals.clock.set(datetime(2030, 1, 10, tzinfo=UTC))
    await timer.fire_due()

    created_event, added_event, *overdue = await goals.events_of(gid, 4)
    assert (created_event.type, added_event.type) == ("goal.created", "milestone.created")
    assert [event.type for event in overdue] == ["milestone.overdue"] * 2
    by_title = {event.data.milestone.title: event for event in overdue}  # type: ignore[attr-defined]
    # Made with the goal: the goal's request and goal.created; added later: that request.
    assert (by_title["Run 10 km"].correlationid, by_title["Run 10 km"].causationid) == (
        "plan-77",
        created_event.id,
    )
    assert (by_title["Run 15 km"].correlationid, by_title["Run 15 km"].causationid) == (
        "plan-78",
        added_event.id,
    )


async def test_the_firing_links_to_the_trace_of_the_change_that_set_the_date(
    goals: GoalsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(spans, "tracer", lambda: provider.get_tracer("test"))
    monkeypatch.setattr(tracing, "enabled", True)
    timer = await _manual_timer(goals)
    service: GoalsService = goals.app.state.goals
    body = GoalCreate.model_validate(
        goal_body(milestones=[{"title": "Run 10 km", "due_date": "2030-01-08"}])
    )
    # The change that sets the date, in a trace (the request's span, when served traced).
    with spans.span("POST /v1/goals") as planning:
        created = await service.create_goal("acme", body)
    planned = planning.get_span_context()
    await goals.clock.set(datetime(2030, 1, 9, tzinfo=UTC))
    await timer.fire_due()
    provider.shutdown()

    [fire] = [s for s in memory.get_finished_spans() if s.name == "fire milestone_overdue"]
    assert fire.parent is None  # days later: a trace of the scheduler's own, linked back
    assert [(link.context.trace_id, link.context.span_id) for link in fire.links] == [
        (planned.trace_id, planned.span_id)
    ]
    assert fire.attributes is not None
    assert fire.attributes["followthrough.milestone_id"] == created.milestones[0].milestone_id
    # The announcement is made in the firing's span: its consumers continue that trace.
    events = await goals.events_of(created.goal_id, 2)
    [overdue] = [e for e in events if e.type == "milestone.overdue"]
    assert overdue.traceparent is not None
    assert overdue.traceparent.split("-")[1] == format(fire.context.trace_id, "032x")
