"""Every refusal names the field: zones, RRULEs, dates in the past, people, sizes."""

from __future__ import annotations

from typing import Any

from tests.services.goals.fixtures import GoalsApi, goal_body

MENTEE = {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "Europe/Berlin"}


def _policy(**overrides: Any) -> dict[str, Any]:
    return {"cadence": {"kind": "daily"}, "timezone": "Europe/Berlin", **overrides}


def _rrule(rule: str) -> dict[str, Any]:
    return _policy(cadence={"kind": "rrule", "rrule": rule})


# pydantic names the chosen cadence kind in the path: cadence.<kind>.<field>.
RRULE_FIELD = "body.policy.cadence.rrule.rrule"


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown zone", {"policy": _policy(timezone="Mars/Olympus")}, "body.policy.timezone", "IANA"),
    ("offset as zone", {"policy": _policy(timezone="+02:00")}, "body.policy.timezone", "IANA"),
    (
        "mentee zone",
        {"participants": [{**MENTEE, "timezone": "CEST"}]},
        "body.participants.0.timezone",
        "IANA",
    ),
    (
        "mentee without zone",
        {"participants": [{**MENTEE, "timezone": None}], "policy": None},
        "body.participants.0.timezone",
        "time zone",
    ),
    ("minutely rrule", {"policy": _rrule("FREQ=MINUTELY")}, RRULE_FIELD, "hourly"),
    (
        "every 30 minutes",
        {"policy": _rrule("FREQ=HOURLY;BYMINUTE=0,30")},
        RRULE_FIELD,
        "hourly",
    ),
    (
        "never fires",
        {"policy": _rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")},
        RRULE_FIELD,
        "never",
    ),
    (
        "count bomb",
        {"policy": _rrule("FREQ=DAILY;COUNT=1000000000")},
        RRULE_FIELD,
        "COUNT",
    ),
    (
        "until in the past",
        {"policy": _rrule("FREQ=DAILY;UNTIL=20290101T000000Z")},
        RRULE_FIELD,
        "past",
    ),
    (
        "unsupported part",
        {"policy": _rrule("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1")},
        RRULE_FIELD,
        "BYSETPOS",
    ),
    ("garbage rrule", {"policy": _rrule("FREQ=SOMETIMES")}, RRULE_FIELD, "RRULE"),
    ("target in the past", {"target_date": "2030-01-06"}, "body.target_date", "past"),
    ("target nonsense", {"target_date": "1900-01-01"}, "body.target_date", "2000"),
    (
        "milestone in the past",
        {"milestones": [{"title": "x", "due_date": "2029-12-31"}]},
        "body.milestones.0.due_date",
        "past",
    ),
    (
        "starts in the past",
        {"policy": _policy(starts_on="2029-06-01")},
        "body.policy.starts_on",
        "past",
    ),
    ("oversize title", {"title": "x" * 201}, "body.title", "200"),
    ("blank title", {"title": "   "}, "body.title", "at least 1"),
    ("oversize description", {"description": "x" * 4001}, "body.description", "4000"),
    ("unknown field", {"colour": "red"}, "body.colour", "Extra"),
    (
        "unknown policy field",
        {"policy": _policy(snooze=True)},
        "body.policy.snooze",
        "Extra",
    ),
    ("no mentee", {"participants": [{**MENTEE, "role": "peer"}]}, "body.participants", "mentee"),
    (
        "two mentees",
        {"participants": [MENTEE, {**MENTEE, "email": "eve@example.com"}]},
        "body.participants",
        "exactly one",
    ),
    (
        "same person twice",
        {
            "participants": [
                MENTEE,
                {"role": "peer", "name": "P", "email": "p@example.com"},
                {"role": "peer", "name": "Q", "email": "P@example.com"},
            ]
        },
        "body.participants.2.email",
        "already",
    ),
    (
        "ladder names a missing role",
        {
            "participants": [MENTEE],
            "policy": _policy(escalation=[{"after_misses": 2, "notify_roles": ["sponsor"]}]),
        },
        "body.policy.escalation.0.notify_roles.0",
        "sponsor",
    ),
    (
        "ladder not increasing",
        {
            "policy": _policy(
                escalation=[
                    {"after_misses": 2, "notify_roles": ["mentee"]},
                    {"after_misses": 2, "notify_roles": ["mentor"]},
                ]
            )
        },
        "body.policy.escalation",
        "increasing",
    ),
    (
        "bad email",
        {"participants": [{**MENTEE, "email": "ada"}]},
        "body.participants.0.email",
        "email",
    ),
    ("bad external ref", {"external_ref": "has/slash"}, "body.external_ref", "pattern"),
    ("too many milestones", {"milestones": [{"title": "m"}] * 201}, "body.milestones", "200"),
    # PostgreSQL cannot store NUL: refused everywhere, so both backends answer alike.
    ("nul in a field", {"title": "Run\u0000"}, "body.title", "NUL"),
    (
        "nul deep inside",
        {"participants": [{**MENTEE, "name": "A\u0000"}]},
        "body.participants",
        "NUL",
    ),
]


async def test_invalid_goals_are_refused_naming_the_field(goals: GoalsApi) -> None:
    """All cases against one app (validation does not depend on the backend's speed)."""
    failures = []
    for name, overrides, field, words in CASES:
        response = await goals.http.post("/v1/goals", json=goal_body(**overrides))
        if response.status_code != 422:
            failures.append(f"{name}: {response.status_code} {response.text[:200]}")
            continue
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"].endswith("/validation-error")
        fields = {error["field"]: error["message"] for error in problem["errors"]}
        if field not in fields or words.lower() not in fields[field].lower():
            failures.append(f"{name}: wanted {field} ~ {words!r}, got {fields}")
    assert not failures, "\n".join(failures)
    listed = await goals.http.get("/v1/goals")
    assert listed.json()["items"] == []


async def test_patches_and_milestones_are_validated_too(goals: GoalsApi) -> None:
    goal = await goals.create()
    gid, mid = goal["id"], goal["milestones"][0]["id"]
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("PATCH", f"/v1/goals/{gid}", {"target_date": "2029-01-01"}, "body.target_date"),
        ("PATCH", f"/v1/goals/{gid}", {"participants": None}, "body.participants"),
        (
            "PATCH",
            f"/v1/goals/{gid}",
            {"participants": [MENTEE]},
            "body.policy.escalation.0.notify_roles.0",
        ),
        (
            "POST",
            f"/v1/goals/{gid}/milestones",
            {"title": "m", "due_date": "2029-01-01"},
            "body.due_date",
        ),
        ("PATCH", f"/v1/goals/{gid}/milestones/{mid}", {"due_date": "2029-01-01"}, "body.due_date"),
        ("POST", f"/v1/goals/{gid}/progress", {"percent": 101}, "body.percent"),
        ("POST", f"/v1/goals/{gid}/pause", {"reason": "x" * 501}, "body.reason"),
    ]
    for method, path, body, field in cases:
        response = await goals.http.request(method, path, json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    unchanged = (await goals.http.get(f"/v1/goals/{gid}")).json()
    assert unchanged["version"] == 1
    odd_id = await goals.http.get("/v1/goals/a%00b")
    assert odd_id.status_code == 422
    assert odd_id.json()["errors"][0]["field"] == "path.goal_id"
    item = {
        "specversion": "1.0",
        "id": "n1",
        "source": "/crm\u0000",
        "type": "ingest.goal.paused",
        "data": {"goal": {"goal_id": gid}},
    }
    batch = await goals.http.post("/v1/events", json=[item])
    assert batch.status_code == 200
    (result,) = batch.json()["results"]
    assert result["status"] == "rejected"
    assert result["errors"][0]["field"] == "source"
