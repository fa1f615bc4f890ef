"""Bodies no client should send, against the write routes of all three services.

Oversize bodies answer 413 (declared or streamed); JSON nested past the
parser's limit, invalid UTF-8, huge strings, unknown time zones and dates
that do not exist answer 422 problem+json whose ``errors`` name the field.
Nothing is ever a 5xx, and nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from tests.services.goals.fixtures import goal_body
from tests.support.stack import StackFactory

MiB = 1024 * 1024

# One representative write of each kind per service: (service, method, path, valid body).
WRITES: list[tuple[str, str, str, Any]] = [
    ("goals", "POST", "/v1/goals", goal_body()),
    ("goals", "PUT", "/v1/goals/by-ref/crm-1", goal_body()),
    ("goals", "POST", "/v1/events", [{"specversion": "1.0", "id": "e1", "source": "/x"}]),
    ("sessions", "POST", "/v1/checkins", {"goal_id": "g-1"}),
    ("sessions", "POST", "/v1/sessions", {"goal_id": "g-1", "starts_at": "2030-05-06T15:00:00Z"}),
    ("notifications", "POST", "/v1/endpoints", {"url": "https://example.com/hook"}),
    ("notifications", "PUT", "/v1/preferences/ada@example.com", {"delivery": "digest"}),
    (
        "notifications",
        "PUT",
        "/v1/templates/checkin.missed",
        {"subject": "s", "text": "t", "html": "<p>h</p>"},
    ),
]


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.text[:500])
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert "Traceback" not in response.text
    return problem


def _fields(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem.get("errors") or []}


async def test_unreadable_and_oversize_bodies_on_every_write(
    stack: StackFactory, auth_headers: Callable[..., dict[str, str]]
) -> None:
    headers = {**auth_headers(), "content-type": "application/json"}
    bad_bodies = {
        "nested arrays": b"[" * 200_000 + b"]" * 200_000,
        "nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "invalid UTF-8": b'{"title": "caf\xe9 \xff"}',
        "truncated": b'{"title": "half',
    }
    async with stack() as running, httpx.AsyncClient(timeout=60) as http:
        for service, method, path, valid in WRITES:
            url = running.urls[service] + path
            for name, body in bad_bodies.items():
                answer = await http.request(method, url, content=body, headers=headers)
                problem = _assert_problem(answer, 422)
                assert any(field.startswith("body") for field in _fields(problem)), (path, name)

            padded = json.dumps(valid).encode() + b" " * (2 * MiB)
            declared = await http.request(method, url, content=padded, headers=headers)
            assert _assert_problem(declared, 413)["type"].endswith("/payload-too-large")

            async def streamed() -> AsyncIterator[bytes]:
                for _ in range(3):
                    yield b" " * MiB

            chunked = await http.request(method, url, content=streamed(), headers=headers)
            _assert_problem(chunked, 413)

        goals = await http.get(f"{running.urls['goals']}/v1/goals", headers=headers)
        endpoints = await http.get(f"{running.urls['notifications']}/v1/endpoints", headers=headers)
    assert goals.json()["items"] == []
    assert endpoints.json()["items"] == []


async def test_huge_strings_unknown_zones_and_impossible_dates_name_the_field(
    stack: StackFactory, auth_headers: Callable[..., dict[str, str]]
) -> None:
    headers = auth_headers()
    huge = "x" * 600_000
    mentee = goal_body()["participants"][0]
    policy = {"cadence": {"kind": "daily"}, "timezone": "Europe/Berlin"}
    cases: list[tuple[str, str, str, Any, str]] = [
        ("goals", "POST", "/v1/goals", goal_body(title=huge), "body.title"),
        ("goals", "POST", "/v1/goals", goal_body(description=huge), "body.description"),
        (
            "goals",
            "POST",
            "/v1/goals",
            goal_body(participants=[{**mentee, "timezone": "Mars/Olympus_Mons"}]),
            "body.participants.0.timezone",
        ),
        (
            "goals",
            "POST",
            "/v1/goals",
            goal_body(policy={**policy, "timezone": "europe/berlin"}),
            "body.policy.timezone",
        ),
        ("goals", "POST", "/v1/goals", goal_body(target_date="2030-02-30"), "body.target_date"),
        ("goals", "POST", "/v1/goals", goal_body(target_date="1999-12-31"), "body.target_date"),
        (
            "goals",
            "POST",
            "/v1/goals",
            goal_body(policy={**policy, "time_of_day": "24:30"}),
            "body.policy.time_of_day",
        ),
        (
            "goals",
            "POST",
            "/v1/goals",
            goal_body(policy={**policy, "starts_on": "2031-04-31"}),
            "body.policy.starts_on",
        ),
        ("sessions", "POST", "/v1/checkins", {"goal_id": "g", "notes": huge}, "body.notes"),
        (
            "sessions",
            "POST",
            "/v1/checkins",
            {"goal_id": "g", "occurred_at": "2030-13-01T09:00:00Z"},
            "body.occurred_at",
        ),
        (
            "sessions",
            "POST",
            "/v1/checkins",
            {"goal_id": "g", "occurred_at": "2030-01-01T09:00:00"},  # no offset: ambiguous
            "body.occurred_at",
        ),
        ("sessions", "POST", "/v1/checkins", {"goal_id": huge}, "body.goal_id"),
        (
            "notifications",
            "POST",
            "/v1/endpoints",
            {"url": "https://example.com/" + "a" * 5000},
            "body.url",
        ),
        (
            "notifications",
            "POST",
            "/v1/endpoints",
            {"url": "https://example.com/hook", "description": huge},
            "body.description",
        ),
        (
            "notifications",
            "POST",
            "/v1/endpoints",
            {"url": "https://example.com/hook", "payload_filter": {"goal.category": huge}},
            "body.payload_filter",
        ),
        (
            "notifications",
            "PUT",
            "/v1/preferences/ada@example.com",
            {"timezone": "Atlantis/Capital"},
            "body.timezone",
        ),
        (
            "notifications",
            "PUT",
            "/v1/preferences/ada@example.com",
            {"quiet_start": "25:00", "quiet_end": "07:00"},
            "body.quiet_start",
        ),
    ]
    async with stack() as running, httpx.AsyncClient(timeout=60) as http:
        for service, method, path, body, field in cases:
            answer = await http.request(
                method, running.urls[service] + path, json=body, headers=headers
            )
            problem = _assert_problem(answer, 422)
            assert field in _fields(problem), (field, problem.get("errors"))
            assert not any("Extra inputs" in e["message"] for e in problem["errors"]), problem
            assert len(answer.content) < 20_000  # the huge input is not echoed back

        # Query strings and path segments are validated the same way.
        since = await http.get(
            f"{running.urls['notifications']}/v1/messages",
            params={"since": "2030-02-30T00:00:00Z"},
            headers=headers,
        )
        assert "query.since" in _fields(_assert_problem(since, 422))
        long_id = await http.get(f"{running.urls['goals']}/v1/goals/{'a' * 5000}", headers=headers)
        assert "path.goal_id" in _fields(_assert_problem(long_id, 422))

        # A batch answers per item: the bad one is rejected naming its field, nothing stored.
        batch = [
            {
                "specversion": "1.0",
                "id": "bad-zone",
                "source": "/crm",
                "type": "ingest.goal.upserted",
                "data": {
                    "external_ref": "crm-9",
                    **goal_body(participants=[{**mentee, "timezone": "Not/AZone"}]),
                },
            }
        ]
        result = await http.post(f"{running.urls['goals']}/v1/events", json=batch, headers=headers)
        assert result.status_code == 200, result.text
        (item,) = result.json()["results"]
        assert item["status"] == "rejected"
        assert any("timezone" in error["field"] for error in item["errors"]), item
        listed = await http.get(f"{running.urls['goals']}/v1/goals", headers=headers)
        assert listed.json()["items"] == []
