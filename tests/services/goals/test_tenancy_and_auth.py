"""Tenancy and credentials over HTTP: another tenant's ids answer 404 everywhere; bad
credentials answer 401 (with WWW-Authenticate) or 403, as problem+json."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.auth.keys import generate_key
from shared.auth.tokens import TokenIssuer
from tests.services.goals.fixtures import GoalsApi, goal_body

# A valid body for every route that takes one, so only the tenant decides the answer.
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/v1/goals/{goal_id}"): {"title": "Taken over"},
    ("POST", "/v1/goals/{goal_id}/milestones"): {"title": "Sneaky"},
    ("PATCH", "/v1/goals/{goal_id}/milestones/{milestone_id}"): {"title": "Sneaky"},
    ("POST", "/v1/goals/{goal_id}/progress"): {"percent": 99},
}


def _goal_routes(goals: GoalsApi) -> list[tuple[str, str]]:
    """Every goal-scoped operation, as the app documents them."""
    return [
        (method.upper(), path)
        for path, operations in goals.app.openapi()["paths"].items()
        if "{goal_id}" in path
        for method in operations
    ]


async def test_another_tenants_ids_answer_404_on_every_route(
    goals: GoalsApi, auth_headers: Callable[..., dict[str, str]]
) -> None:
    goal = await goals.create(external_ref="acme-1")
    gid, mid = goal["id"], goal["milestones"][0]["id"]
    globex = auth_headers("globex")
    routes = _goal_routes(goals)
    assert len(routes) >= 14  # every goal-scoped route of the API, found from the app itself
    for method, template in routes:
        path = template.format(goal_id=gid, milestone_id=mid)
        response = await goals.http.request(
            method, path, json=BODIES.get((method, template)), headers=globex
        )
        assert response.status_code == 404, (method, template, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert gid not in response.text.replace(path, "") or "not found" in response.text

    by_ref = await goals.http.get("/v1/goals/by-ref/acme-1", headers=globex)
    assert by_ref.status_code == 404
    listed = await goals.http.get("/v1/goals", headers=globex)
    assert listed.json()["items"] == []
    ingested = await goals.http.post(
        "/v1/events",
        headers=globex,
        json=[
            {
                "specversion": "1.0",
                "id": "x-1",
                "source": "/globex",
                "type": "ingest.goal.paused",
                "data": {"goal": {"goal_id": gid}},
            }
        ],
    )
    assert ingested.json()["results"][0]["status"] == "rejected"
    # The same external ref is simply another goal for another tenant.
    own = await goals.http.put("/v1/goals/by-ref/acme-1", json=goal_body(), headers=globex)
    assert own.status_code == 201
    assert own.json()["id"] != gid

    after = (await goals.http.get(f"/v1/goals/{gid}")).json()
    assert after["version"] == goal["version"]
    assert after["title"] == goal["title"]
    history = (await goals.http.get(f"/v1/goals/{gid}/events")).json()["items"]
    assert [e["type"] for e in history] == ["goal.created"]


def _assert_unauthenticated(response: Any) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    detail: str = response.json()["detail"]
    return detail


async def test_bad_credentials_answer_401_or_403(
    goals: GoalsApi,
    private_jwk: dict[str, Any],
    token: Callable[..., str],
) -> None:
    good = TokenIssuer(private_jwk, issuer="followthrough", audience="followthrough-api")
    stranger = TokenIssuer(private_jwk, issuer="followthrough", audience="someone-else")
    unknown_kid = TokenIssuer(
        generate_key("rotated-away"), issuer="followthrough", audience="followthrough-api"
    )
    cases: dict[str, dict[str, str]] = {
        "missing": {},
        "not bearer": {"Authorization": "Basic YWNtZTpzZWNyZXQ="},
        "malformed": {"Authorization": "Bearer not.a.token"},
        "expired": {
            "Authorization": "Bearer "
            + good.mint(
                "acme",
                ttl=timedelta(hours=1),
                now=datetime.now(UTC) - timedelta(hours=3),
            )
        },
        "wrong signature": {
            "Authorization": "Bearer "
            + TokenIssuer(
                generate_key("test-key-1"), issuer="followthrough", audience="followthrough-api"
            ).mint("acme")
        },
        "unknown kid": {"Authorization": "Bearer " + unknown_kid.mint("acme")},
        "wrong audience": {"Authorization": "Bearer " + stranger.mint("acme")},
        "wrong issuer": {
            "Authorization": "Bearer "
            + TokenIssuer(private_jwk, issuer="evil", audience="followthrough-api").mint("acme")
        },
    }
    details = {}
    async with httpx.AsyncClient(base_url=str(goals.http.base_url)) as anonymous:
        for name, headers in cases.items():
            response = await anonymous.get("/v1/goals", headers=headers)
            details[name] = _assert_unauthenticated(response)
    assert "missing" in details["missing"]
    assert "expired" in details["expired"]
    assert "unknown key" in details["unknown kid"]
    assert "signature" in details["wrong signature"].lower()
    assert "audience" in details["wrong audience"].lower()
    assert "issuer" in details["wrong issuer"].lower()

    reader = {"Authorization": f"Bearer {token('acme', ('goals:read',))}"}
    listed = await goals.http.get("/v1/goals", headers=reader)
    assert listed.status_code == 200
    refused = await goals.http.post("/v1/goals", json=goal_body(), headers=reader)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" not in refused.headers
    assert "goals:write" in refused.json()["detail"]
    sessions_only = {"Authorization": f"Bearer {token('acme', ('sessions:read',))}"}
    assert (await goals.http.get("/v1/goals", headers=sessions_only)).status_code == 403
    batch = await goals.http.post("/v1/events", json=[], headers=reader)
    assert batch.status_code == 403
