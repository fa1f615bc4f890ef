"""Erasing a person, through real processes: goals, sessions, notifications, broker, SMTP, webhook.

A mentee with a goal, a milestone, a check-in whose note names her address,
a preference in notifications, an email received and webhooks delivered; the
same address also on another tenant's goal. Then ``POST /v1/erasures``:

* without ``tenant:admin`` it is refused, a malformed address is a 422 problem;
* the erasure completes once sessions and notifications confirmed;
* her calendar feed answers until then, and 404 after;
* every table of every service's database no longer holds her address or
  her name (the other tenant's rows, and only those, still do);
* a later event of the same goal emails the mentor, never her, and the mail
  holds nothing of her; replaying a message that named her is refused;
* asking again answers the same erasure; an unknown person completes too;
* ``GET /v1/people/export`` gathers her data from all three before, and only the
  erasure and the suppression after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine

from shared.auth.tokens import TENANT_ADMIN_SCOPE, TENANT_SCOPES
from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import SmtpSink
from tests.support.kafka import produce, read_records
from tests.support.receiver import running_receiver
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SERVICES = ("goals", "sessions", "notifications")
EMAIL = "adelheid.quastenberg@example.com"
NAME = "Adelheid Quastenberg"
MENTOR = "grace.hopperton@example.com"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def databases(database_url_for: Callable[[str], str]) -> dict[str, str]:
    """Each service's database on this run's backend (SQLite files or PostgreSQL)."""
    return {name: database_url_for(name) for name in SERVICES}


@pytest.fixture
def services(
    broker: TansuBroker,
    keys_file: Path,
    topic_prefix: str,
    tmp_path: Path,
    smtp: SmtpSink,
    databases: dict[str, str],
) -> Iterator[dict[str, ServiceProcess]]:
    env = {
        "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "FOLLOWTHROUGH_KAFKA_TOPIC_PREFIX": topic_prefix,
        "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
        "FOLLOWTHROUGH_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_DATA_DIR": str(tmp_path / "data"),
        "FOLLOWTHROUGH_ENVIRONMENT": "test",
        "FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "FOLLOWTHROUGH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "FOLLOWTHROUGH_PRIVACY_KEY": "erasure-test-privacy-key",
        "NOTIFICATIONS_SMTP_PORT": str(smtp.port),
        "NOTIFICATIONS_WEBHOOK_ALLOW_HTTP": "true",
        "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    }
    started = {name: ServiceProcess(name, dict(env), tmp_path / f"{name}.log") for name in SERVICES}
    for name, process in started.items():
        process.env[f"{name.upper()}_DATABASE_URL"] = databases[name]
    started["goals"].env["GOALS_SESSIONS_URL"] = started["sessions"].url
    started["goals"].env["GOALS_NOTIFICATIONS_URL"] = started["notifications"].url
    try:
        for process in started.values():
            process.start()
        yield started
    finally:
        for process in started.values():
            process.stop()


def goal_body(title: str) -> dict[str, Any]:
    return {
        "title": title,
        "status": "active",
        "milestones": [{"title": "First long run"}],
        "participants": [
            {"role": "mentee", "name": NAME, "email": EMAIL, "timezone": "Europe/Berlin"},
            {"role": "mentor", "name": "Grace Hopperton", "email": MENTOR},
        ],
        "policy": {
            "cadence": {"kind": "weekly", "weekdays": ["MO"]},
            "time_of_day": "09:00",
            "timezone": "Europe/Berlin",
        },
    }


async def rows_naming(database_url: str, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    """(table, row text) of every row of every table whose text holds one of ``needles``."""
    found: list[tuple[str, str]] = []
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            metadata = MetaData()
            await connection.run_sync(metadata.reflect)
            for table in metadata.sorted_tables:
                for row in await connection.execute(select(table)):
                    text = " ".join(
                        bytes(value).decode(errors="replace")
                        if isinstance(value, bytes | memoryview)
                        else str(value)
                        for value in row
                    ).lower()
                    if any(needle.lower() in text for needle in needles):
                        found.append((table.name, text))
    finally:
        await engine.dispose()
    return found


async def strays(database_url: str) -> list[tuple[str, str]]:
    """Rows naming her that are not the other tenant's."""
    hits = await rows_naming(database_url, (EMAIL, NAME))
    return [(table, text[:300]) for table, text in hits if "globex" not in text]


def mails_to(smtp: SmtpSink, address: str) -> list[dict[str, Any]]:
    return [m for m in smtp.messages if address in m["rcpt_tos"]]


async def test_erasure_forgets_the_person_in_every_service_and_no_email_follows(
    services: dict[str, ServiceProcess],
    auth_headers: Callable[..., dict[str, str]],
    smtp: SmtpSink,
    tmp_path: Path,
    broker: TansuBroker,
    topic_prefix: str,
    databases: dict[str, str],
) -> None:
    urls = {name: process.url for name, process in services.items()}
    acme = auth_headers("acme")
    admin = auth_headers("acme", (*TENANT_SCOPES, TENANT_ADMIN_SCOPE))
    globex = auth_headers("globex")
    async with running_receiver() as receiver, httpx.AsyncClient(timeout=15) as http:
        endpoint = await http.post(
            f"{urls['notifications']}/v1/endpoints",
            headers=acme,
            json={"url": f"{receiver.url}/hook", "event_types": ["goal.*", "person.*"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        for event_type, roles in (("goal.created", ["mentee"]), ("milestone.completed", ["*"])):
            rule = await http.put(
                f"{urls['notifications']}/v1/email-rules/{event_type}",
                headers=acme,
                json={"roles": roles},
            )
            assert rule.status_code == 200, rule.text
        preference = await http.put(
            f"{urls['notifications']}/v1/preferences/{EMAIL}",
            headers=acme,
            json={"delivery": "immediate", "timezone": "Europe/Berlin"},
        )
        assert preference.status_code == 200, preference.text

        created = await http.post(
            f"{urls['goals']}/v1/goals", headers=acme, json=goal_body("Run a half marathon")
        )
        assert created.status_code == 201, created.text
        goal = created.json()
        goal_id, milestone_id = goal["id"], goal["milestones"][0]["id"]
        other = await http.post(
            f"{urls['goals']}/v1/goals", headers=globex, json=goal_body("Swim a mile")
        )
        assert other.status_code == 201, other.text

        async def projected() -> bool:
            answer = await http.post(
                f"{urls['sessions']}/v1/checkins",
                headers=acme,
                json={"goal_id": goal_id, "notes": f"write to me at {EMAIL}", "rating": 4},
            )
            return answer.status_code == 201

        await eventually(projected, timeout=30, what="sessions to know the goal")
        await eventually(lambda: len(mails_to(smtp, EMAIL)) >= 1, timeout=30, what="her email")
        await receiver.wait_for(1)
        # Her calendar feed (a row holding her address): it works until she is erased.
        calendars = await http.get(f"{urls['sessions']}/v1/goals/{goal_id}/calendars", headers=acme)
        assert calendars.status_code == 200, calendars.text
        (hers,) = [p for p in calendars.json()["participants"] if p["email"] == EMAIL]
        feed_path = "/v1/calendars/" + hers["goal_feed"]["url"].split("/v1/calendars/", 1)[1]
        assert (await http.get(urls["sessions"] + feed_path)).status_code == 200

        # An access request first: one document from the three services.
        export_url = f"{urls['goals']}/v1/people/export"
        assert (
            await http.get(export_url, headers=acme, params={"email": EMAIL})
        ).status_code == 403
        bad_export = await http.get(export_url, headers=admin, params={"email": "nope"})
        assert bad_export.status_code == 422
        exported = await http.get(export_url, headers=admin, params={"email": EMAIL})
        assert exported.status_code == 200, exported.text
        document = exported.json()
        assert [g["goal_id"] for g in document["goals"]["goals"]] == [goal_id]
        assert document["goals"]["goals"][0]["roles"] == ["mentee"]
        assert [g["goal_id"] for g in document["sessions"]["goals"]] == [goal_id]
        assert document["sessions"]["checkins"][0]["notes"] == f"write to me at {EMAIL}"
        assert document["notifications"]["preference"]["timezone"] == "Europe/Berlin"
        assert document["notifications"]["emails"]
        assert document["notifications"]["suppressed"] is False

        # Who may ask, and what is refused.
        refused = await http.post(
            f"{urls['goals']}/v1/erasures", headers=acme, json={"email": EMAIL}
        )
        assert refused.status_code == 403
        malformed = await http.post(
            f"{urls['goals']}/v1/erasures", headers=admin, json={"email": "not-an-address"}
        )
        assert malformed.status_code == 422
        assert malformed.headers["content-type"].startswith("application/problem+json")
        assert malformed.json()["errors"][0]["field"] == "body.email"

        answer = await http.post(
            f"{urls['goals']}/v1/erasures",
            headers=admin,
            json={"email": EMAIL.upper(), "reference": "user-4711"},
        )
        assert answer.status_code == 202, answer.text
        erasure = answer.json()
        assert answer.headers["location"] == f"/v1/erasures/{erasure['id']}"
        assert erasure["services"]["goals"]["status"] == "erased"
        assert erasure["services"]["sessions"]["status"] == "pending"

        async def completed() -> bool:
            state = await http.get(f"{urls['goals']}/v1/erasures/{erasure['id']}", headers=admin)
            assert state.status_code == 200, state.text
            return bool(state.json()["status"] == "completed")

        await eventually(completed, timeout=30, what="the erasure to complete")
        done = (
            await http.get(f"{urls['goals']}/v1/erasures/{erasure['id']}", headers=admin)
        ).json()
        assert {name: part["status"] for name, part in done["services"].items()} == {
            "goals": "erased",
            "sessions": "erased",
            "notifications": "erased",
        }
        assert done["services"]["sessions"]["records"] >= 2  # the projection and the check-in
        assert done["services"]["notifications"]["records"] >= 2  # preference, messages
        assert (await http.get(urls["sessions"] + feed_path)).status_code == 404

        again = await http.post(
            f"{urls['goals']}/v1/erasures", headers=admin, json={"email": EMAIL}
        )
        assert again.status_code == 202
        assert again.json()["id"] == erasure["id"]

        # The goal stays, without her; the other tenant's goal still has her.
        now = (await http.get(f"{urls['goals']}/v1/goals/{goal_id}", headers=acme)).json()
        assert NAME not in str(now)
        assert EMAIL not in str(now)
        kept = await http.get(f"{urls['goals']}/v1/goals/{other.json()['id']}", headers=globex)
        assert EMAIL in kept.text
        assert NAME in kept.text

        # The export now finds nothing held, only the erasure and the suppression.
        after = (await http.get(export_url, headers=admin, params={"email": EMAIL})).json()
        assert after["goals"]["goals"] == []
        assert [e["id"] for e in after["goals"]["erasures"]] == [erasure["id"]]
        assert after["sessions"] == {"goals": [], "checkins": [], "coaching_sessions": []}
        assert after["notifications"]["preference"] is None
        assert after["notifications"]["emails"] == []
        assert after["notifications"]["suppressed"] is True

        # Integrators hear of it (the request and both confirmations), without her address.
        def person_events() -> list[dict[str, Any]]:
            bodies = [orjson.loads(r.body) for r in receiver.requests]
            return [b for b in bodies if b["type"].startswith("person.")]

        await eventually(lambda: len(person_events()) >= 3, timeout=30, what="person.* webhooks")
        assert sorted(e["type"] for e in person_events()) == [
            "person.erased",
            "person.erased",
            "person.erasure_requested",
        ]
        assert {e["data"]["service"] for e in person_events() if e["type"] == "person.erased"} == {
            "sessions",
            "notifications",
        }
        assert all(e["data"]["reference"] == "user-4711" for e in person_events())
        assert all(EMAIL not in orjson.dumps(e).decode() for e in person_events())

        # An older event naming her, replayed from the topic under a new id, brings nothing back.
        records = await read_records(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            until=lambda rs: any(
                b'"goal.created"' in r.value and goal_id.encode() in r.value for r in rs
            ),
        )
        original = next(
            orjson.loads(r.value)
            for r in records
            if b'"goal.created"' in r.value and goal_id.encode() in r.value
        )
        assert original["data"]["goal"]["participants"][0]["email"] == EMAIL
        await produce(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [orjson.dumps({**original, "id": f"replayed-{original['id']}"})],
            key=goal_id.encode(),
        )

        # A later event of the same goal (after the replay in its partition): the mentor is
        # emailed, she is not.
        before = len(smtp.messages)
        completed_milestone = await http.post(
            f"{urls['goals']}/v1/goals/{goal_id}/milestones/{milestone_id}/complete", headers=acme
        )
        assert completed_milestone.status_code == 200, completed_milestone.text
        await eventually(
            lambda: len(mails_to(smtp, MENTOR)) >= 1, timeout=30, what="the mentor's email"
        )
        later = smtp.messages[before:]
        assert later
        assert all(EMAIL not in m["rcpt_tos"] for m in later)
        for mail in later:
            body = mail["content"].decode(errors="replace")
            assert EMAIL not in body
            assert NAME not in body

        # Replaying the message that named her is refused.
        messages = await http.get(
            f"{urls['notifications']}/v1/messages", headers=acme, params={"limit": 100}
        )
        assert messages.status_code == 200, messages.text
        items = messages.json()["items"]
        assert f"replayed-{original['id']}" in {m["id"] for m in items}  # it was handled
        routing = await http.get(
            f"{urls['notifications']}/v1/events/replayed-{original['id']}/routing", headers=acme
        )
        assert routing.status_code == 200, routing.text
        assert "erased" in {d.get("reason") for d in routing.json()["decisions"]}
        first = next(m for m in items if m["id"] == original["id"])
        replay = await http.post(
            f"{urls['notifications']}/v1/messages/{first['id']}/replay", headers=acme
        )
        assert replay.status_code == 409, replay.text
        assert replay.json()["type"].endswith("/person-erased")

        # Someone nothing is held about: 202, and it completes.
        unknown = await http.post(
            f"{urls['goals']}/v1/erasures", headers=admin, json={"email": "nobody@example.org"}
        )
        assert unknown.status_code == 202

        async def unknown_completed() -> bool:
            state = await http.get(
                f"{urls['goals']}/v1/erasures/{unknown.json()['id']}", headers=admin
            )
            return bool(state.json()["status"] == "completed")

        await eventually(unknown_completed, timeout=30, what="the empty erasure to complete")

    for name in SERVICES:
        assert await strays(databases[name]) == [], f"{name} still holds her"
    # The other tenant's data is untouched: its goal and projections still name her.
    assert await rows_naming(databases["goals"], (EMAIL,))
    assert await rows_naming(databases["sessions"], (EMAIL,))
