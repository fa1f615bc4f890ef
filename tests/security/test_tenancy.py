"""Tenant isolation and credentials on every route of every service.

The routes come from each app's own OpenAPI document, so a route added later
is covered without touching this test (one with a body needs a body below).
Tenant A gets data in all three services; tenant B, with every tenant scope,
then calls every operation with A's ids. B must never see anything of A's
(no id, address, title, URL or secret of A's in any answer), every route
naming one of A's resources must answer 404, and afterwards A's data must be
exactly as it was. Every operation also refuses missing, malformed,
expired, forged, wrongly signed and unknown-key credentials (401) and
credentials without its scope (403); webhook secrets appear only in the
answers that create them, and in no log line of the run.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.auth.keys import generate_key
from shared.auth.tokens import TENANT_ADMIN_SCOPE, TENANT_SCOPES, TokenIssuer
from shared.devstack.broker import TansuBroker
from tests.services.goals.fixtures import goal_body
from tests.support.receiver import running_receiver
from tests.support.stack import Stack, StackFactory
from tests.support.waiting import eventually

ISSUER, AUDIENCE = "followthrough", "followthrough-api"
OPEN_ROUTES = {
    "/healthz",
    "/readyz",
    "/v1/links/{action}",
    "/v1/links/calendar",
    "/v1/unsubscribe",
    "/v1/calendars/{token}.ics",
}
"""Answer without a bearer credential by design (health; links whose token is the credential)."""
ID_PARAMETERS = {
    "erasure_id",
    "goal_id",
    "milestone_id",
    "endpoint_id",
    "message_id",
    "event_id",
    "session_id",
    "feed_id",
    "dead_letter_id",
    "external_ref",
}


def _bodies(a: TenantData) -> dict[tuple[str, str], Any]:
    """A valid body for every operation that takes one, so only the tenant decides."""
    at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    return {
        ("POST", "/v1/goals"): goal_body(title="B's own goal"),
        ("PUT", "/v1/goals/by-ref/{external_ref}"): goal_body(title="B's own goal"),
        ("PATCH", "/v1/goals/{goal_id}"): {"title": "Taken over"},
        ("POST", "/v1/goals/{goal_id}/milestones"): {"title": "Sneaky"},
        ("PATCH", "/v1/goals/{goal_id}/milestones/{milestone_id}"): {"title": "Sneaky"},
        ("POST", "/v1/goals/{goal_id}/milestones/{milestone_id}/complete"): {"evidence_note": "x"},
        ("POST", "/v1/goals/{goal_id}/milestones/{milestone_id}/skip"): {"note": "x"},
        ("POST", "/v1/goals/{goal_id}/progress"): {"percent": 99},
        ("POST", "/v1/events"): [
            {
                "specversion": "1.0",
                "id": f"b-{uuid.uuid4().hex}",
                "source": "/b",
                "type": "ingest.goal.paused",
                "data": {"goal": {"goal_id": a.ids["goal_id"]}},
            }
        ],
        ("POST", "/v1/checkins"): {"goal_id": a.ids["goal_id"]},
        ("POST", "/v1/goals/{goal_id}/acknowledge"): {},
        ("POST", "/v1/goals/{goal_id}/snooze"): {"minutes": 30},
        ("POST", "/v1/sessions"): {
            "goal_id": a.ids["goal_id"],
            "starts_at": at,
            "duration_minutes": 30,
            "link": "https://meet.example.com/b",
        },
        ("POST", "/v1/sessions/{session_id}/reschedule"): {"starts_at": at},
        ("POST", "/v1/endpoints"): {"url": "http://127.0.0.1:9/b-own"},
        ("PATCH", "/v1/endpoints/{endpoint_id}"): {"description": "taken", "enabled": False},
        ("POST", "/v1/messages/{message_id}/replay"): {"endpoint_id": a.ids["endpoint_id"]},
        ("PUT", "/v1/email-rules/{event_type}"): {"roles": []},
        ("PUT", "/v1/templates/{event_type}"): {"subject": "b", "text": "b", "html": "<p>b</p>"},
        ("PUT", "/v1/preferences/{address}"): {"delivery": "immediate"},
        # B erasing A's address erases B's person of that address, never A's.
        ("POST", "/v1/erasures"): {"email": a.ids["address"]},
        ("PUT", "/v1/retention"): {"windows": {"dead_letters": 86400}},
    }


LIFECYCLE = re.compile(r"^/v1/goals/\{goal_id\}/(activate|pause|resume|complete|abandon)$")
QUERY = {"/v1/endpoints/{endpoint_id}/recover": {"since": "2000-01-01T00:00:00Z"}}


@dataclass
class TenantData:
    """Tenant A's resources: the ids to attack with, the markers B must never see."""

    ids: dict[str, str] = field(default_factory=dict)
    markers: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    dead_letters: dict[str, str] = field(default_factory=dict)


def _operations(running: Stack) -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for service, app in running.apps.items():
        for path, methods in app.openapi()["paths"].items():
            for method, operation in methods.items():
                found.append((service, method.upper(), path, operation))
    return found


def _query(path: str, a: TenantData) -> dict[str, str] | None:
    if path.startswith("/v1/people/export"):  # B asks for A's address: B's own person
        return {"email": a.ids["address"]}
    return QUERY.get(path)


def _fill(path: str, a: TenantData, service: str) -> str:
    """The path with A's ids (and A's dead letter in this service) in its parameters."""
    values = {**a.ids, "event_type": "checkin.missed"}
    values["dead_letter_id"] = a.dead_letters.get(service, str(uuid.uuid4()))
    values.setdefault("erasure_id", str(uuid.uuid4()))
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def _publish_poison(bootstrap: str, topic: str, tenant: str) -> None:
    """A record of A's that nobody can process: both consumers of the topic dead-letter it."""
    value = (
        f'{{"specversion": "1.0", "id": "poison-{uuid.uuid4().hex[:8]}", "type": '
        f'"goal.exploded", "tenantid": "{tenant}", "source": "/x"}}'
    ).encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"poison")
    finally:
        await producer.stop()


async def _tenant_a(
    http: httpx.AsyncClient, running: Stack, headers: dict[str, str], receiver_url: str
) -> TenantData:
    a = TenantData()
    marker = f"amarker{uuid.uuid4().hex[:10]}"
    email = f"{marker}@example.com"
    body = goal_body(title=f"Goal {marker}", external_ref=f"ref-{marker}")
    body["participants"][0]["email"] = email
    body["policy"] = {"cadence": {"kind": "daily"}, "timezone": "Europe/Berlin"}
    goals, sessions, notifications = (
        running.urls[name] for name in ("goals", "sessions", "notifications")
    )
    endpoint = await http.post(
        f"{notifications}/v1/endpoints",
        json={"url": f"{receiver_url}/{marker}", "description": marker},
        headers=headers,
    )
    assert endpoint.status_code == 201, endpoint.text
    a.ids["endpoint_id"] = endpoint.json()["id"]
    a.secrets.add(endpoint.json()["secret"])
    rotated = await http.post(
        f"{notifications}/v1/endpoints/{a.ids['endpoint_id']}/rotate-secret", headers=headers
    )
    assert rotated.status_code == 200, rotated.text
    a.secrets.add(rotated.json()["secret"])

    goal = await http.post(f"{goals}/v1/goals", json=body, headers=headers)
    assert goal.status_code == 201, goal.text
    a.ids.update(
        goal_id=goal.json()["id"],
        milestone_id=goal.json()["milestones"][0]["id"],
        external_ref=f"ref-{marker}",
    )

    async def projected() -> bool:
        answer = await http.get(f"{sessions}/v1/goals/{a.ids['goal_id']}/checkins", headers=headers)
        return answer.status_code == 200

    await eventually(projected, timeout=30, what="sessions to know A's goal")
    checkin = await http.post(
        f"{sessions}/v1/checkins",
        json={"goal_id": a.ids["goal_id"], "notes": marker},
        headers=headers,
    )
    assert checkin.status_code == 201, checkin.text
    session = await http.post(
        f"{sessions}/v1/sessions",
        json={
            "goal_id": a.ids["goal_id"],
            "starts_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
            "duration_minutes": 45,
            "link": "https://meet.example.com/a",
        },
        headers=headers,
    )
    assert session.status_code == 201, session.text
    a.ids["session_id"] = session.json()["id"]
    calendars = await http.get(f"{sessions}/v1/goals/{a.ids['goal_id']}/calendars", headers=headers)
    assert calendars.status_code == 200, calendars.text
    feed = calendars.json()["participants"][0]["goal_feed"]
    a.ids["feed_id"] = feed["feed_id"]
    a.markers.add(feed["url"].rsplit("/", 1)[1].removesuffix(".ics"))  # the feed's token

    for path, payload in [
        ("/v1/email-rules/checkin.missed", {"roles": ["mentor"]}),
        ("/v1/templates/checkin.missed", {"subject": marker, "text": marker, "html": marker}),
        (f"/v1/preferences/{email}", {"delivery": "digest", "timezone": "Europe/Berlin"}),
    ]:
        answer = await http.put(f"{notifications}{path}", json=payload, headers=headers)
        assert answer.status_code == 200, answer.text

    async def message_arrived() -> bool:
        listed = await http.get(
            f"{notifications}/v1/messages",
            params={"event_type": "goal.created"},
            headers=headers,
        )
        items = listed.json()["items"]
        if items:
            a.ids["message_id"] = a.ids["event_id"] = items[0]["id"]
        return bool(items)

    await eventually(message_arrived, timeout=30, what="A's goal.created to reach notifications")

    for service in ("sessions", "notifications"):

        async def dead_lettered(service: str = service) -> bool:
            listed = await http.get(f"{running.urls[service]}/v1/dead-letters", headers=headers)
            items = listed.json()["items"]
            if items:
                a.dead_letters[service] = items[0]["id"]
            return bool(items)

        await eventually(dead_lettered, timeout=30, what=f"A's dead letter in {service}")
    a.ids["address"] = email
    a.markers = {marker, *a.ids.values(), *a.dead_letters.values()}
    return a


async def _snapshot(
    http: httpx.AsyncClient, running: Stack, a: TenantData, headers: dict[str, str]
) -> dict[str, Any]:
    goals, sessions, notifications = (
        running.urls[name] for name in ("goals", "sessions", "notifications")
    )
    paths = {
        "goal": f"{goals}/v1/goals/{a.ids['goal_id']}",
        "history": f"{goals}/v1/goals/{a.ids['goal_id']}/events",
        "checkins": f"{sessions}/v1/goals/{a.ids['goal_id']}/checkins",
        "session": f"{sessions}/v1/sessions/{a.ids['session_id']}",
        "calendars": f"{sessions}/v1/goals/{a.ids['goal_id']}/calendars",
        "endpoint": f"{notifications}/v1/endpoints/{a.ids['endpoint_id']}",
        "rules": f"{notifications}/v1/email-rules",
        "templates": f"{notifications}/v1/templates",
        "preference": f"{notifications}/v1/preferences/{a.ids['address']}",
        "message": f"{notifications}/v1/messages/{a.ids['message_id']}",
        "sessions dead letters": f"{sessions}/v1/dead-letters",
        "notifications dead letters": f"{notifications}/v1/dead-letters",
    }
    taken: dict[str, Any] = {}
    for name, url in paths.items():
        answer = await http.get(url, headers=headers)
        assert answer.status_code == 200, (name, answer.text)
        body = answer.json()
        if name == "checkins":  # the risk score is computed at the time of asking
            body = [(c["id"], c["occurred_at"]) for c in body["checkins"]]
        if name == "message":  # attempts may still be added by A's own deliveries
            body = (body["id"], body["event_type"], body["event"])
        taken[name] = body
    return taken


async def test_tenant_b_never_reads_or_changes_tenant_a(
    stack: StackFactory,
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    a_headers = auth_headers("tenant-a")
    b_headers = auth_headers("tenant-b", (*TENANT_SCOPES, TENANT_ADMIN_SCOPE))
    async with (
        running_receiver() as receiver,
        stack() as running,
        httpx.AsyncClient(timeout=30) as http,
    ):
        await _publish_poison(broker.bootstrap_servers, f"{topic_prefix}goals", "tenant-a")
        a = await _tenant_a(http, running, a_headers, receiver.url)
        before = await _snapshot(http, running, a, a_headers)
        bodies = _bodies(a)
        called = 0
        for service, method, path, operation in _operations(running):
            if path in OPEN_ROUTES:
                continue
            required = operation.get("requestBody", {}).get("required", False)
            optional = LIFECYCLE.match(path) or not required
            if "requestBody" in operation and (method, path) not in bodies and not optional:
                pytest.fail(f"add a valid body for {method} {path} to this test")
            url = running.urls[service] + _fill(path, a, service)
            params = _query(path, a)
            answer = await http.request(
                method,
                url,
                json=bodies.get((method, path)),
                params=params,
                headers=b_headers,
            )
            called += 1
            names = set(re.findall(r"\{(\w+)\}", path))
            label = f"{service} {method} {path}"
            assert answer.status_code < 500, (label, answer.text)
            # B's own input may be echoed back (a 404 names the id it was asked for); what B
            # did not send must never show.
            sent = url + json.dumps(bodies.get((method, path))) + json.dumps(params)
            leaked = [m for m in a.markers | a.secrets if m in answer.text and m not in sent]
            assert not leaked, (label, leaked, answer.text[:500])
            upsert = (method, path) == ("PUT", "/v1/goals/by-ref/{external_ref}")
            if names & ID_PARAMETERS and not upsert:
                assert answer.status_code == 404, (label, answer.status_code, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
        assert called >= 55  # every authenticated operation of the three services
        after = await _snapshot(http, running, a, a_headers)
        for name in before:
            assert after[name] == before[name], name

        # Secrets show only in the answers that made them: no other read of A's returns one.
        for service, method, path, _ in _operations(running):
            if method != "GET" or path in OPEN_ROUTES:
                continue
            url = running.urls[service] + _fill(path, a, service)
            answer = await http.get(url, params=_query(path, a), headers=a_headers)
            assert not [s for s in a.secrets if s in answer.text], path

    logged = "".join(capfd.readouterr())
    assert "endpoint" in logged  # the services' log lines were captured
    for secret in [*a.secrets, a_headers["Authorization"][7:], b_headers["Authorization"][7:]]:
        assert secret not in logged
        assert secret.removeprefix("whsec_") not in logged


async def test_every_operation_refuses_bad_credentials(
    stack: StackFactory,
    private_jwk: dict[str, str],
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    good = TokenIssuer(private_jwk, issuer=ISSUER, audience=AUDIENCE)
    same_kid_other_key = TokenIssuer(
        generate_key(private_jwk["kid"]), issuer=ISSUER, audience=AUDIENCE
    )
    valid = good.mint("acme")
    head, claims, signature = valid.split(".")
    forged_claims = claims[:-4] + ("AAAA" if not claims.endswith("AAAA") else "BBBB")
    unauthenticated = {
        "missing": {},
        "not bearer": {"Authorization": "Basic YWNtZTpzZWNyZXQ="},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "expired": {
            "Authorization": "Bearer "
            + good.mint("acme", ttl=timedelta(hours=1), now=datetime.now(UTC) - timedelta(hours=3))
        },
        "forged claims": {"Authorization": f"Bearer {head}.{forged_claims}.{signature}"},
        "no signature": {"Authorization": f"Bearer {head}.{claims}."},
        "wrong key": {"Authorization": "Bearer " + same_kid_other_key.mint("acme")},
        "unknown key": {
            "Authorization": "Bearer "
            + TokenIssuer(generate_key("gone"), issuer=ISSUER, audience=AUDIENCE).mint("acme")
        },
        "wrong audience": {
            "Authorization": "Bearer "
            + TokenIssuer(private_jwk, issuer=ISSUER, audience="elsewhere").mint("acme")
        },
    }
    async with stack() as running, httpx.AsyncClient(timeout=30) as http:
        checked = 0
        for service, method, path, _ in _operations(running):
            if path in OPEN_ROUTES:
                continue
            url = running.urls[service] + re.sub(r"\{\w+\}", "x1", path)
            for name, headers in unauthenticated.items():
                answer = await http.request(method, url, headers=headers)
                assert answer.status_code == 401, (service, method, path, name, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.headers["www-authenticate"].startswith("Bearer")
            # A credential for the other services only, or read-only for a write: 403.
            others = tuple(s for s in TENANT_SCOPES if not s.startswith(f"{service}:"))
            reads = (f"{service}:read",)
            for scopes in (others, reads) if method != "GET" else (others,):
                answer = await http.request(method, url, headers=auth_headers("acme", scopes))
                assert answer.status_code == 403, (service, method, path, scopes, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
            checked += 1
        assert checked >= 55
