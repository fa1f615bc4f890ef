"""``POST /v1/events``: mixed batches, duplicates, per-item rollback, causation and correlation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.services.goals.fixtures import GoalsApi, goal_body

SOURCE = "/crm/goals"


def _event(event_id: str, kind: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": f"ingest.{kind}",
        "data": data,
        **extra,
    }


def _upsert(event_id: str, ref: str, **overrides: Any) -> dict[str, Any]:
    body = goal_body(milestones=[{"title": "Run 10 km", "external_ref": "ms-10"}])
    body.update(overrides)
    return _event(event_id, "goal.upserted", {"external_ref": ref, **body})


def _ref(ref: str) -> dict[str, str]:
    return {"external_ref": ref}


async def _ingest(goals: GoalsApi, items: list[Any], **headers: str) -> dict[str, Any]:
    response = await goals.http.post("/v1/events", json=items, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_mixed_batch_answers_per_item_in_order(goals: GoalsApi) -> None:
    batch = [
        {**_upsert("e1", "g-1"), "correlationid": "sync-42"},
        _event(
            "e2",
            "milestone.completed",
            {"goal": _ref("g-1"), "milestone": _ref("ms-10"), "evidence_note": "Strava"},
        ),
        _event("e3", "progress.reported", {"goal": _ref("g-1"), "percent": 150}),
        _event("e4", "progress.reported", {"goal": _ref("g-1"), "percent": 50}),
        _event("e5", "goal.paused", {"goal": _ref("g-1"), "reason": "Injury"}),
        _event("e6", "goal.paused", {"goal": _ref("g-1")}),
        _event("e7", "goal.paused", {"goal": _ref("nobody")}),
        _upsert("e1", "g-1"),
        _event("e8", "goal.teleported", {"goal": _ref("g-1")}),
        _event("e9", "goal.resumed", {"goal": _ref("g-1")}, tenantid="globex"),
        "not an event",
        {**_event("e10", "goal.resumed", {"goal": _ref("g-1")}), "specversion": "0.3"},
        _event(
            "e11",
            "milestone.upserted",
            {"goal": _ref("g-1"), "milestone": {"title": "Run 15 km", "external_ref": "ms-15"}},
        ),
    ]
    result = await _ingest(goals, batch, **{"X-Correlation-ID": "request-7"})
    statuses = [(r["index"], r["id"], r["status"]) for r in result["results"]]
    assert statuses == [
        (0, "e1", "accepted"),
        (1, "e2", "accepted"),
        (2, "e3", "rejected"),
        (3, "e4", "accepted"),
        (4, "e5", "accepted"),
        (5, "e6", "rejected"),
        (6, "e7", "rejected"),
        (7, "e1", "duplicate"),
        (8, "e8", "rejected"),
        (9, "e9", "rejected"),
        (10, None, "rejected"),
        (11, "e10", "rejected"),
        (12, "e11", "accepted"),
    ]
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (5, 1, 7)
    by_index = {r["index"]: r for r in result["results"]}
    assert by_index[2]["errors"][0]["field"] == "data.percent"
    assert "goal is paused" in by_index[5]["reason"]
    assert "not found" in by_index[6]["reason"]
    assert by_index[8]["errors"][0]["field"] == "type"
    assert by_index[9]["errors"][0]["field"] == "tenantid"
    assert by_index[10]["reason"] == "item is not a JSON object"
    assert by_index[11]["errors"][0]["field"] == "specversion"

    gid = by_index[0]["goal_id"]
    goal = (await goals.http.get(f"/v1/goals/{gid}")).json()
    assert goal["status"] == "paused"
    assert goal["progress_percent"] == 50
    assert [(m["external_ref"], m["status"]) for m in goal["milestones"]] == [
        ("ms-10", "completed"),
        ("ms-15", "pending"),
    ]
    emitted = [eid for r in result["results"] for eid in r["emitted"]]
    events = await goals.events_of(gid, len(emitted))
    assert [e.id for e in events] == emitted
    assert [e.type for e in events] == [
        "goal.created",
        "milestone.completed",
        "progress.reported",
        "goal.paused",
        "milestone.created",
    ]
    assert [e.causationid for e in events] == ["e1", "e2", "e4", "e5", "e11"]
    assert [e.correlationid for e in events] == [
        "sync-42",
        "request-7",
        "request-7",
        "request-7",
        "request-7",
    ]
    assert [e.data.goal.version for e in events] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]


async def test_accepted_ids_stay_duplicates_and_rejected_ones_may_be_fixed(
    goals: GoalsApi,
) -> None:
    first = await _ingest(
        goals,
        [
            _upsert("a1", "g-2"),
            _event("a2", "progress.reported", {"goal": _ref("g-2"), "percent": 101}),
        ],
    )
    assert [r["status"] for r in first["results"]] == ["accepted", "rejected"]
    gid = first["results"][0]["goal_id"]
    second = await _ingest(
        goals,
        [
            _upsert("a1", "g-2", title="Changed title"),
            _event("a2", "progress.reported", {"goal": _ref("g-2"), "percent": 10}),
            {**_upsert("a1", "g-2"), "source": "/another/system"},
        ],
    )
    assert [r["status"] for r in second["results"]] == ["duplicate", "accepted", "accepted"]
    assert second["results"][0]["emitted"] == []
    goal = (await goals.http.get(f"/v1/goals/{gid}")).json()
    assert goal["title"] == "Run a half marathon"  # the duplicate changed nothing
    assert goal["progress_percent"] == 10
    history = (await goals.http.get(f"/v1/goals/{gid}/events")).json()["items"]
    assert [e["type"] for e in history] == ["goal.created", "progress.reported"]


async def test_a_refused_item_leaves_no_trace(goals: GoalsApi) -> None:
    created = await _ingest(goals, [_upsert("b1", "g-3")])
    gid = created["results"][0]["goal_id"]
    half_good = _upsert(
        "b2",
        "g-3",
        title="A new title",
        milestones=[
            {"title": "Fine", "external_ref": "ms-ok"},
            {"title": "Too late", "due_date": "2020-01-01"},
        ],
    )
    result = await _ingest(goals, [half_good, _event("b3", "goal.paused", {"goal": _ref("g-3")})])
    refused, paused = result["results"]
    assert refused["status"] == "rejected"
    assert refused["errors"][0]["field"] == "data.milestones.1.due_date"
    assert paused["status"] == "accepted"
    goal = (await goals.http.get(f"/v1/goals/{gid}")).json()
    assert goal["title"] == "Run a half marathon"
    assert [m["external_ref"] for m in goal["milestones"]] == ["ms-10"]
    assert goal["version"] == 2
    history = (await goals.http.get(f"/v1/goals/{gid}/events")).json()["items"]
    assert [e["type"] for e in history] == ["goal.created", "goal.paused"]
    assert history[1]["data"]["goal"]["version"] == 2


async def test_malformed_batches_are_refused_whole(goals: GoalsApi) -> None:
    not_array = await goals.http.post("/v1/events", json={"events": []})
    assert not_array.status_code == 422
    assert not_array.json()["errors"][0]["field"] == "body"
    empty = await goals.http.post("/v1/events", json=[])
    assert empty.status_code == 422
    too_many = await goals.http.post("/v1/events", json=[{}] * 501)
    assert too_many.status_code == 422
    assert "501" in too_many.json()["detail"]
    not_json = await goals.http.post(
        "/v1/events", content=b"[{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    wrong_type = await goals.http.post(
        "/v1/events", content=b"[]", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    batch_type = await goals.http.post(
        "/v1/events",
        content=b'[{"specversion": "1.0"}]',
        headers={"content-type": "application/cloudevents-batch+json"},
    )
    assert batch_type.status_code == 200
    assert batch_type.json()["rejected"] == 1


@contextmanager
def _statements(goals: GoalsApi) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs (executemany counts once)."""
    seen: list[str] = []
    engine = goals.app.state.runtime.database.engine.sync_engine

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_full_batch_is_one_request_worth_of_database_work(goals: GoalsApi) -> None:
    goals_in_batch = 50
    batch = [_upsert(f"u{i}", f"bulk-{i}") for i in range(goals_in_batch)]
    batch += [
        _event(
            f"p{i}",
            "progress.reported",
            {"goal": _ref(f"bulk-{i % goals_in_batch}"), "percent": i % 101},
        )
        for i in range(500 - goals_in_batch)
    ]
    with _statements(goals) as statements:
        result = await _ingest(goals, batch)
    assert result["accepted"] == 500
    ours = [s for s in statements if "outbox" not in s or "INSERT" in s]
    # Work grows with the kinds of rows written, not with the number of items.
    assert len([s for s in ours if "INSERT INTO progress_reports" in s]) == 1
    assert len([s for s in ours if "INSERT INTO goal_events" in s]) == 1
    assert len([s for s in ours if "INSERT INTO ingested_events" in s]) == 1
    assert len([s for s in ours if s.startswith("UPDATE goals")]) <= 1
    assert len(ours) < 30, ours
    listed = (await goals.http.get("/v1/goals", params={"limit": 200})).json()["items"]
    assert len(listed) == goals_in_batch
    assert all(g["version"] == 10 for g in listed)  # created + 9 progress reports each
