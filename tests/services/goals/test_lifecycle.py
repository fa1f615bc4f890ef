"""Every lifecycle change through HTTP, with its event read back from the real broker."""

from __future__ import annotations

from typing import Any

from shared.events.catalog.goals import (
    GoalEventData,
    MilestoneEventData,
    ProgressReportedData,
)
from tests.services.goals.fixtures import GoalsApi


async def _post(goals: GoalsApi, path: str, json: Any = None, **headers: str) -> dict[str, Any]:
    response = await goals.http.post(path, json=json, headers=headers)
    assert response.status_code in (200, 201), response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    body: dict[str, Any] = response.json()
    return body


async def test_each_transition_answers_and_publishes_its_event(goals: GoalsApi) -> None:
    goal = await goals.create(status="draft")
    gid = goal["id"]
    assert goal["status"] == "draft"
    assert goal["version"] == 1
    statuses = []
    for action, reason in [
        ("activate", None),
        ("pause", "Travelling"),
        ("resume", None),
        ("complete", None),
    ]:
        body = {"reason": reason} if reason else None
        answer = await _post(
            goals, f"/v1/goals/{gid}/{action}", body, **{"X-Correlation-ID": action}
        )
        statuses.append(answer["status"])
    assert statuses == ["active", "paused", "active", "completed"]

    other = await goals.create(status="draft")
    await _post(goals, f"/v1/goals/{other['id']}/abandon", {"reason": "Changed plans"})

    events = await goals.events_of(gid, 5)
    assert [e.type for e in events] == [
        "goal.created",
        "goal.activated",
        "goal.paused",
        "goal.resumed",
        "goal.completed",
    ]
    data = [e.data for e in events]
    assert all(isinstance(d, GoalEventData) for d in data)
    assert [d.goal.version for d in data] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    assert [d.previous_status for d in data] == [  # type: ignore[attr-defined]
        None,
        "draft",
        "active",
        "paused",
        "active",
    ]
    assert [e.correlationid for e in events[1:]] == ["activate", "pause", "resume", "complete"]
    assert data[2].reason == "Travelling"  # type: ignore[attr-defined]
    assert events[0].data.goal.timezone == "Europe/Berlin"  # type: ignore[attr-defined]
    assert all(e.tenantid == "acme" and e.subject == f"goals/{gid}" for e in events)
    (abandoned,) = [e for e in await goals.events_of(other["id"], 2) if e.type == "goal.abandoned"]
    assert abandoned.data.previous_status == "draft"  # type: ignore[attr-defined]
    assert abandoned.data.reason == "Changed plans"  # type: ignore[attr-defined]


async def test_illegal_transitions_answer_409_naming_the_status(goals: GoalsApi) -> None:
    goal = await goals.create(status="draft")
    gid = goal["id"]
    for action in ("pause", "resume", "complete"):
        refused = await goals.http.post(f"/v1/goals/{gid}/{action}")
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["current_status"] == "draft"
        assert "goal is draft" in problem["detail"]
        assert problem["type"].endswith("/illegal-transition")

    await _post(goals, f"/v1/goals/{gid}/activate")
    await _post(goals, f"/v1/goals/{gid}/complete")
    for action in ("activate", "pause", "resume", "complete", "abandon"):
        refused = await goals.http.post(f"/v1/goals/{gid}/{action}")
        assert refused.status_code == 409
        assert refused.json()["current_status"] == "completed"
    closed = await goals.http.patch(f"/v1/goals/{gid}", json={"title": "Run a marathon"})
    assert closed.status_code == 409
    assert closed.json()["current_status"] == "completed"
    progress = await goals.http.post(f"/v1/goals/{gid}/progress", json={"percent": 10})
    assert progress.status_code == 409

    history = (await goals.http.get(f"/v1/goals/{gid}/events")).json()["items"]
    assert [e["type"] for e in history] == ["goal.created", "goal.activated", "goal.completed"]
    current = await goals.http.get(f"/v1/goals/{gid}")
    assert current.json()["version"] == 3


async def test_milestones_and_progress_publish_their_events(goals: GoalsApi) -> None:
    goal = await goals.create()
    gid = goal["id"]
    first = goal["milestones"][0]
    assert first["overdue_at"] == "2030-02-01T23:00:00Z"  # midnight after Feb 1, Berlin

    added = await goals.http.post(
        f"/v1/goals/{gid}/milestones",
        json={"title": "Run 15 km", "due_date": "2030-03-01", "external_ref": "ms-15"},
    )
    assert added.status_code == 201, added.text
    second_id = added.headers["location"].rsplit("/", 1)[1]
    read = await goals.http.get(f"/v1/goals/{gid}/milestones/{second_id}")
    assert read.json()["external_ref"] == "ms-15"

    await _post_patch(goals, f"/v1/goals/{gid}/milestones/{second_id}", {"title": "Run 16 km"})
    await _post(
        goals,
        f"/v1/goals/{gid}/milestones/{first['id']}/complete",
        {"evidence_note": "Strava 1"},
    )
    again = await goals.http.post(f"/v1/goals/{gid}/milestones/{first['id']}/complete")
    assert again.status_code == 409
    assert again.json()["current_status"] == "completed"
    await _post(goals, f"/v1/goals/{gid}/milestones/{second_id}/skip", {"note": "Injured"})
    await _post(goals, f"/v1/goals/{gid}/progress", {"percent": 30})
    final = await _post(goals, f"/v1/goals/{gid}/progress", {"percent": 45, "note": "14 km"})
    assert final["progress_percent"] == 45
    assert [m["status"] for m in final["milestones"]] == ["completed", "skipped"]

    events = await goals.events_of(gid, 7)
    assert [e.type for e in events] == [
        "goal.created",
        "milestone.created",
        "milestone.updated",
        "milestone.completed",
        "milestone.skipped",
        "progress.reported",
        "progress.reported",
    ]
    created, updated, completed, skipped = (e.data for e in events[1:5])
    assert isinstance(created, MilestoneEventData)
    assert isinstance(completed, MilestoneEventData)
    assert created.milestone.title == "Run 15 km"
    assert updated.milestone.title == "Run 16 km"  # type: ignore[attr-defined]
    assert completed.milestone.evidence_note == "Strava 1"
    assert completed.milestone.completed_at is not None
    assert skipped.milestone.status == "skipped"  # type: ignore[attr-defined]
    progress = events[-1].data
    assert isinstance(progress, ProgressReportedData)
    assert (progress.percent, progress.previous_percent, progress.note) == (45, 30, "14 km")
    assert progress.goal.progress_percent == 45
    assert events[-1].subject == f"goals/{gid}"
    assert events[1].subject == f"goals/{gid}/milestones/{second_id}"

    # The history is the published events, oldest first, page by page.
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await goals.http.get(f"/v1/goals/{gid}/events", params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["id"] for e in seen] == [e.id for e in events]
    assert seen[3]["data"]["milestone"]["evidence_note"] == "Strava 1"


async def _post_patch(goals: GoalsApi, path: str, json: Any) -> dict[str, Any]:
    response = await goals.http.patch(path, json=json)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_patch_changes_fields_and_emits_only_on_change(goals: GoalsApi) -> None:
    goal = await goals.create(category="health")
    gid = goal["id"]
    patched = await _post_patch(
        goals,
        f"/v1/goals/{gid}",
        {
            "title": "Run a marathon",
            "category": None,
            "policy": {"cadence": {"kind": "daily"}, "timezone": "America/New_York"},
        },
    )
    assert (patched["title"], patched["category"], patched["version"]) == (
        "Run a marathon",
        None,
        2,
    )
    assert patched["timezone"] == "America/New_York"
    # The milestone's overdue instant follows the goal's new zone.
    assert patched["milestones"][0]["overdue_at"] == "2030-02-02T05:00:00Z"
    same = await _post_patch(goals, f"/v1/goals/{gid}", {"title": "Run a marathon"})
    assert same["version"] == 2

    nulled = await goals.http.patch(f"/v1/goals/{gid}", json={"title": None})
    assert nulled.status_code == 422
    assert nulled.json()["errors"][0]["field"] == "body.title"

    events = await goals.events_of(gid, 2)
    assert [e.type for e in events] == ["goal.created", "goal.updated"]
    history = (await goals.http.get(f"/v1/goals/{gid}/events")).json()["items"]
    assert len(history) == 2
