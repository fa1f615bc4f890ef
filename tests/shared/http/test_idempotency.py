"""``Idempotency-Key`` through the goals API, over real HTTP on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from shared.db.tables import idempotency_keys
from shared.events.envelope import utc_now
from shared.http import idempotency
from shared.http.idempotency import _hash
from tests.services.goals.fixtures import GoalsApi, clock, goal_body, goals, goals_settings
from tests.support.waiting import eventually

__all__ = ["clock", "goals", "goals_settings"]  # fixtures used here


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid.uuid4()}"}


async def _goal_count(goals: GoalsApi) -> int:
    page = (await goals.http.get("/v1/goals", params={"limit": 200})).json()
    return len(page["items"])


async def test_same_key_and_body_replays_the_first_answer(goals: GoalsApi) -> None:
    key = _key()
    first = await goals.http.post("/v1/goals", json=goal_body(), headers=key)
    again = await goals.http.post("/v1/goals", json=goal_body(), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert await _goal_count(goals) == 1
    history = await goals.http.get(f"/v1/goals/{first.json()['id']}/events")
    assert [e["type"] for e in history.json()["items"]] == ["goal.created"]


async def test_same_key_with_another_body_or_path_answers_422(goals: GoalsApi) -> None:
    key = _key()
    first = await goals.http.post("/v1/goals", json=goal_body(), headers=key)
    assert first.status_code == 201
    other = await goals.http.post("/v1/goals", json=goal_body(title="Other"), headers=key)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"].endswith("/idempotency-key-reused")
    gid = first.json()["id"]
    elsewhere = await goals.http.post(f"/v1/goals/{gid}/pause", headers=key)
    assert elsewhere.status_code == 422
    assert await _goal_count(goals) == 1


async def test_replay_holds_even_when_running_again_would_fail(goals: GoalsApi) -> None:
    goal = await goals.create()
    key = _key()
    paused = await goals.http.post(f"/v1/goals/{goal['id']}/pause", headers=key)
    assert paused.status_code == 200
    replayed = await goals.http.post(f"/v1/goals/{goal['id']}/pause", headers=key)
    assert replayed.status_code == 200
    assert replayed.json()["status"] == "paused"
    fresh = await goals.http.post(f"/v1/goals/{goal['id']}/pause", headers=_key())
    assert fresh.status_code == 409


async def test_a_refusal_is_remembered_too(goals: GoalsApi) -> None:
    key = _key()
    bad = goal_body(participants=[])
    first = await goals.http.post("/v1/goals", json=bad, headers=key)
    again = await goals.http.post("/v1/goals", json=bad, headers=key)
    assert first.status_code == again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/problem+json"


async def test_an_immediate_retry_is_always_a_replay(goals: GoalsApi) -> None:
    """The answer is stored before it is sent, so no retry can see the key in progress."""
    for _ in range(15):
        key = _key()
        first = await goals.http.post("/v1/goals", json=goal_body(), headers=key)
        again = await goals.http.post("/v1/goals", json=goal_body(), headers=key)
        assert (first.status_code, again.status_code) == (201, 201), again.text
    assert await _goal_count(goals) == 15


async def test_concurrent_requests_with_one_key_run_once(goals: GoalsApi) -> None:
    key = _key()
    answers = await asyncio.gather(
        *(goals.http.post("/v1/goals", json=goal_body(), headers=key) for _ in range(6))
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    in_progress = [a for a in answers if a.status_code == 409]
    assert all(a.headers["retry-after"] == "1" for a in in_progress)
    assert await _goal_count(goals) == 1


async def test_a_key_in_progress_answers_409_until_it_goes_stale(goals: GoalsApi) -> None:
    key = _key()
    body = goal_body()
    database = goals.app.state.runtime.database
    request = goals.http.build_request("POST", "/v1/goals", json=body, headers=key)
    request_hash = _hash_of(request)
    async with database.transaction() as session:
        await session.execute(
            insert(idempotency_keys).values(
                tenant_id="acme",
                key=key["Idempotency-Key"],
                method="POST",
                path="/v1/goals",
                request_hash=request_hash,
                created_at=utc_now(),
            )
        )
    busy = await goals.http.send(request)
    assert busy.status_code == 409
    assert busy.json()["type"].endswith("/idempotency-key-in-progress")

    stale_key = _key()
    stale_request = goals.http.build_request("POST", "/v1/goals", json=body, headers=stale_key)
    async with database.transaction() as session:
        await session.execute(
            insert(idempotency_keys).values(
                tenant_id="acme",
                key=stale_key["Idempotency-Key"],
                method="POST",
                path="/v1/goals",
                request_hash=_hash_of(stale_request),
                created_at=utc_now() - timedelta(minutes=5),
            )
        )
    taken_over = await goals.http.send(stale_request)
    assert taken_over.status_code == 201


def _hash_of(request: httpx.Request) -> str:
    scope: dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "query_string": request.url.query,
    }
    return _hash(scope, request.content)


async def test_keys_belong_to_a_tenant(goals: GoalsApi, auth_headers: Any) -> None:
    key = _key()
    acme = await goals.http.post("/v1/goals", json=goal_body(), headers=key)
    other = await goals.http.post(
        "/v1/goals", json=goal_body(), headers={**key, **auth_headers("globex")}
    )
    assert acme.status_code == other.status_code == 201
    assert acme.json()["id"] != other.json()["id"]
    assert "idempotent-replayed" not in other.headers


async def test_bad_keys_and_bad_credentials_are_not_stored(goals: GoalsApi) -> None:
    invalid = await goals.http.post(
        "/v1/goals", json=goal_body(), headers={"Idempotency-Key": "has space"}
    )
    assert invalid.status_code == 400
    assert invalid.json()["type"].endswith("/invalid-idempotency-key")
    key = _key()
    anonymous = await goals.http.post(
        "/v1/goals", json=goal_body(), headers={**key, "Authorization": "Bearer nope"}
    )
    assert anonymous.status_code == 401
    real = await goals.http.post("/v1/goals", json=goal_body(), headers=key)
    assert real.status_code == 201
    assert "idempotent-replayed" not in real.headers


async def test_an_oversize_streamed_body_with_a_key_answers_413(goals: GoalsApi) -> None:
    limit = goals.app.state.runtime.settings.max_request_bytes

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = await goals.http.post(
        "/v1/goals",
        content=chunks(),
        headers={**_key(), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_lapsed_claim_is_taken_over_by_one_retry_only(goals: GoalsApi) -> None:
    """A process killed mid-request stops renewing; the retries after it run the request once."""
    key = _key()
    request = goals.http.build_request("POST", "/v1/goals", json=goal_body(), headers=key)
    now = utc_now()
    async with goals.app.state.runtime.database.transaction() as session:
        await session.execute(
            insert(idempotency_keys).values(
                tenant_id="acme",
                key=key["Idempotency-Key"],
                method="POST",
                path="/v1/goals",
                request_hash=_hash_of(request),
                created_at=now - timedelta(seconds=30),
                claimed_until=now - timedelta(seconds=1),
            )
        )
    retries = [
        goals.http.build_request("POST", "/v1/goals", json=goal_body(), headers=key)
        for _ in range(5)
    ]
    answers = await asyncio.gather(*(goals.http.send(r) for r in retries))
    statuses = sorted(a.status_code for a in answers)
    assert 201 in statuses
    assert set(statuses) <= {201, 409}, statuses
    assert await _goal_count(goals) == 1
    replay = await goals.http.send(request)
    assert replay.headers["idempotent-replayed"] == "true"


async def test_a_running_request_keeps_renewing_its_claim(
    goals: GoalsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "RENEW_EVERY_SECONDS", 0.05)
    database = goals.app.state.runtime.database
    first_lease = utc_now() + timedelta(seconds=1)
    async with database.transaction() as session:
        await session.execute(
            insert(idempotency_keys).values(
                tenant_id="acme",
                key="slow-request",
                method="POST",
                path="/v1/goals",
                request_hash="0" * 64,
                created_at=utc_now(),
                claimed_until=first_lease,
            )
        )

    async def lease() -> datetime:
        async with database.transaction() as session:
            until: datetime = (
                await session.execute(
                    select(idempotency_keys.c.claimed_until).where(
                        idempotency_keys.c.key == "slow-request"
                    )
                )
            ).scalar_one()
            return until

    async def renewed() -> bool:
        return await lease() > first_lease

    async with idempotency._renewed(database, "acme", "slow-request"):
        await eventually(renewed, what="the lease to be renewed while the request runs")
