"""Upsert by the integrator's id, optimistic concurrency with ETag/If-Match, and the goal list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.services.goals.fixtures import GoalsApi, goal_body


async def test_put_by_ref_creates_then_updates_and_replays_as_no_change(goals: GoalsApi) -> None:
    body = goal_body(milestones=[{"title": "Run 10 km", "external_ref": "ms-10"}])
    created = await goals.http.put("/v1/goals/by-ref/crm-7", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/goals/{created.json()['id']}"
    gid = created.json()["id"]

    replayed = await goals.http.put("/v1/goals/by-ref/crm-7", json=body)
    assert replayed.status_code == 200
    assert replayed.json()["version"] == 1  # nothing changed, nothing emitted

    body["title"] = "Run a full marathon"
    body["milestones"] = [
        {"title": "Run 12 km", "external_ref": "ms-10"},
        {"title": "Run 30 km", "external_ref": "ms-30", "due_date": "2030-05-01"},
    ]
    updated = await goals.http.put("/v1/goals/by-ref/crm-7", json=body)
    assert updated.status_code == 200
    out = updated.json()
    assert out["id"] == gid
    assert out["title"] == "Run a full marathon"
    assert [m["title"] for m in out["milestones"]] == ["Run 12 km", "Run 30 km"]
    assert out["version"] == 4  # goal.updated, milestone.updated, milestone.created

    by_ref = await goals.http.get("/v1/goals/by-ref/crm-7")
    assert by_ref.json() == out
    events = await goals.events_of(gid, 4)
    assert [e.type for e in events] == [
        "goal.created",
        "goal.updated",
        "milestone.updated",
        "milestone.created",
    ]
    assert [e.data.goal.version for e in events] == [1, 2, 3, 4]  # type: ignore[attr-defined]


async def test_a_stale_if_match_answers_412(goals: GoalsApi) -> None:
    goal = await goals.create()
    gid = goal["id"]
    read = await goals.http.get(f"/v1/goals/{gid}")
    tag = read.headers["etag"]
    assert tag == '"1"'
    first = await goals.http.patch(
        f"/v1/goals/{gid}", json={"title": "Mine"}, headers={"If-Match": tag}
    )
    assert first.status_code == 200
    assert first.headers["etag"] == '"2"'
    stale = await goals.http.patch(
        f"/v1/goals/{gid}", json={"title": "Theirs"}, headers={"If-Match": tag}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["etag"] == '"2"'
    assert stale.json()["current_version"] == 2
    for path, json in [
        (f"/v1/goals/{gid}/pause", None),
        (f"/v1/goals/{gid}/progress", {"percent": 5}),
        (f"/v1/goals/{gid}/milestones", {"title": "More"}),
    ]:
        refused = await goals.http.post(path, json=json, headers={"If-Match": tag})
        assert refused.status_code == 412, path
    assert (await goals.http.get(f"/v1/goals/{gid}")).json()["title"] == "Mine"
    anything = await goals.http.post(f"/v1/goals/{gid}/pause", headers={"If-Match": "*"})
    assert anything.status_code == 200
    listed = await goals.http.post(f"/v1/goals/{gid}/resume", headers={"If-Match": '"1", "3"'})
    assert listed.status_code == 200
    put_stale = await goals.http.put(
        "/v1/goals/by-ref/none-yet", json=goal_body(), headers={"If-Match": '"4"'}
    )
    assert put_stale.status_code == 412


async def _page_all(goals: GoalsApi, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await goals.http.get("/v1/goals", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def _mentee(email: str) -> list[dict[str, Any]]:
    return [
        {"role": "mentee", "name": "M", "email": email, "timezone": "Europe/Berlin"},
        {"role": "peer", "name": "P", "email": "pat@example.com"},
    ]


async def test_list_filters_and_pages_with_an_opaque_cursor(goals: GoalsApi) -> None:
    ids = []
    for index in range(7):
        goal = await goals.create(
            participants=_mentee("ada@example.com" if index % 2 else "bob@example.com"),
            policy=None,
        )
        ids.append(goal["id"])
    await goals.http.post(f"/v1/goals/{ids[0]}/pause")
    await goals.clock.advance(timedelta(minutes=5))
    since = goals.clock.now().isoformat()
    await goals.http.patch(f"/v1/goals/{ids[3]}", json={"title": "Changed later"})

    everything = await _page_all(goals, limit=2)
    assert sorted(g["id"] for g in everything) == sorted(ids)
    assert len({g["id"] for g in everything}) == 7
    assert everything[-1]["id"] == ids[3]  # ordered by last change

    paused = await _page_all(goals, status="paused")
    assert [g["id"] for g in paused] == [ids[0]]
    ada = await _page_all(goals, mentee_email="ADA@example.com", limit=1)
    assert sorted(g["id"] for g in ada) == sorted(ids[1::2])
    assert await _page_all(goals, mentee_email="pat@example.com") == []
    pat = await _page_all(goals, participant_email="pat@example.com", limit=3)
    assert len(pat) == 7
    recent = await _page_all(goals, updated_since=since)
    assert [g["id"] for g in recent] == [ids[3]]

    first = (await goals.http.get("/v1/goals", params={"limit": 2})).json()
    wrong_filters = await goals.http.get(
        "/v1/goals", params={"limit": 2, "status": "active", "cursor": first["next_cursor"]}
    )
    assert wrong_filters.status_code == 400
    assert wrong_filters.json()["errors"][0]["field"] == "query.cursor"
    garbage = await goals.http.get("/v1/goals", params={"cursor": "not-a-cursor!"})
    assert garbage.status_code == 400
    too_many = await goals.http.get("/v1/goals", params={"limit": 1000})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "query.limit"


async def test_a_second_post_with_a_taken_external_ref_answers_409_and_writes_nothing(
    goals: GoalsApi,
) -> None:
    first = await goals.create(external_ref="crm-9", title="First")
    refused = await goals.http.post(
        "/v1/goals", json=goal_body(external_ref="crm-9", title="Second")
    )
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "crm-9" in refused.json()["detail"]

    by_ref = await goals.http.get("/v1/goals/by-ref/crm-9")
    assert by_ref.json()["id"] == first["id"]
    assert by_ref.json()["title"] == "First"
    later = await goals.create(title="After the refusal")  # the write lock was given back
    events = await goals.events(lambda evs: any(e.partitionkey == later["id"] for e in evs))
    created = [e for e in events if e.type == "goal.created"]
    assert sorted(e.partitionkey for e in created) == sorted([first["id"], later["id"]])
