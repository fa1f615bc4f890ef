"""``followthrough`` against real running services: every command through their public APIs.

The services run in-process over real HTTP, on the real broker; the CLI is
the installed console script run as a process, minting its own short-lived
credential from the deployment's key set unless given one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.services.cli.conftest import CliStack, Result
from tests.support.kafka import produce, read_records
from tests.support.receiver import Received, Reply, running_receiver
from tests.support.waiting import eventually

OPERATOR = ("sessions:read", "notifications:read", "operator")
GOAL = {
    "title": "Run a half marathon",
    "participants": [
        {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "Europe/Berlin"}
    ],
}


def parsed(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_failed_deliveries_are_listed_explained_and_replayed(
    services: CliStack, auth_headers: Callable[..., dict[str, str]]
) -> None:
    headers = auth_headers("acme")
    failing = {"now": True}

    def answer(_: Received) -> Reply:
        return Reply(500, b"down") if failing["now"] else Reply(200)

    async with running_receiver(answer) as receiver, httpx.AsyncClient(timeout=10) as http:
        created = await http.post(
            f"{services.urls['notifications']}/v1/endpoints",
            headers=headers,
            json={"url": f"{receiver.url}/hook", "event_types": ["goal.created"]},
        )
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["id"]
        for title in ("First", "Second"):
            goal = await http.post(
                f"{services.urls['goals']}/v1/goals", headers=headers, json={**GOAL, "title": title}
            )
            assert goal.status_code == 201, goal.text
        sent_ids = [request.headers["webhook-id"] for request in await receiver.wait_for(2)]

        async def failed_messages() -> int:
            # Waiting reads the API directly; the CLI is run for what it shows.
            answer = await http.get(
                f"{services.urls['notifications']}/v1/messages",
                params={"status": "failed"},
                headers=headers,
            )
            return len(answer.json()["items"])

        async def both_failed() -> bool:
            return await failed_messages() == 2

        await eventually(both_failed, timeout=30, what="two failed messages")
        failed = parsed(await services.cli("--json", "failed"))
        assert {message["id"] for message in failed} == set(sent_ids)
        for message in failed:
            assert message["event_type"] == "goal.created"
            (delivery,) = message["deliveries"]
            assert (delivery["endpoint_id"], delivery["status"]) == (endpoint_id, "failed")
            assert delivery["last_status_code"] == 500
        listing = await services.cli("failed")
        assert listing.exit_code == 0, listing.output
        assert endpoint_id in listing.output
        assert "goal.created" in listing.output

        first, _second = sent_ids
        routing = parsed(await services.cli("--json", "routing", first))
        assert routing["event_id"] == first
        # The webhook matched; no email rule asks for goal.created.
        assert {(d["target"], d["matched"], d["reason"]) for d in routing["decisions"]} == {
            (endpoint_id, True, "matched"),
            ("ada@example.com", False, "rule"),
        }
        explained = await services.cli("routing", first)
        assert "matched" in explained.output
        assert endpoint_id in explained.output
        unknown = await services.cli("routing", "no-such-event")
        assert unknown.exit_code == 1
        assert "404" in unknown.output
        assert "Traceback" not in unknown.output

        failing["now"] = False
        replayed = parsed(await services.cli("--json", "replay", first))
        assert len(replayed["deliveries"]) == 1
        since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
        recovered = parsed(await services.cli("--json", "replay", "--since", since))
        assert recovered == [
            {"endpoint": endpoint_id, "url": f"{receiver.url}/hook", "recovered": 1}
        ]
        again = await receiver.wait_for(4)
        assert sorted(request.headers["webhook-id"] for request in again[2:]) == sorted(sent_ids)

        async def none_failed() -> bool:
            return await failed_messages() == 0

        await eventually(none_failed, timeout=30, what="no failed deliveries left")
        assert (await services.cli("failed")).output.strip() == "no failed deliveries"
        both = await services.cli("replay")
        assert both.exit_code == 1
        assert "error:" in both.output


async def test_status_dead_letters_redrive_and_revoke(
    services: CliStack, token: Callable[..., str]
) -> None:
    goals_topic = f"{services.topic_prefix}goals"
    poison = b'{"specversion": "1.0", "id": '
    await produce(services.bootstrap, goals_topic, [poison])

    operator = {"Authorization": f"Bearer {token('ops', OPERATOR)}"}

    async def dead_in(service: str, count: int, status: str = "dead") -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(
                f"{services.urls[service]}/v1/dead-letters",
                params={"status": status},
                headers=operator,
            )
        return len(answer.json()["items"]) == count

    await eventually(lambda: dead_in("sessions", 1), timeout=30, what="a sessions dead letter")
    await eventually(lambda: dead_in("notifications", 1), timeout=30, what="a notifications one")
    (letter,) = parsed(await services.cli("--json", "dead-letters", "--service", "sessions"))
    assert (letter["topic"], letter["reason"], letter["tenant_id"]) == (
        goals_topic,
        "malformed_json",
        None,
    )
    # A tenant's own credential does not see a record naming no tenant.
    tenant_view = await services.cli(
        "--token", token("acme"), "dead-letters", "--service", "sessions"
    )
    assert tenant_view.output.strip() == "no dead letters"

    redriven = parsed(await services.cli("--json", "redrive", "--service", "sessions", "--all"))
    assert redriven == [{"id": letter["id"], "topic": goals_topic, "result": "redriven"}]
    records = await read_records(
        services.bootstrap, goals_topic, until=lambda rs: [r.value for r in rs] == [poison] * 2
    )
    assert all(dict(record.headers).keys().isdisjoint({"dlq-reason"}) for record in records)
    # Still poison: dead again in both services, the first letter stays re-driven.
    await eventually(lambda: dead_in("sessions", 1), timeout=30, what="dead again")
    assert await dead_in("sessions", 1, status="redriven")
    await eventually(lambda: dead_in("notifications", 2), timeout=30, what="both notifications")
    nothing = await services.cli("redrive", "--service", "sessions")
    assert nothing.exit_code == 1
    assert "error:" in nothing.output

    status = {s["service"]: s for s in parsed(await services.cli("--json", "status"))}
    assert set(status) == {"goals", "sessions", "notifications"}
    for name, url in services.urls.items():
        assert status[name]["replicas"] == {url: "ready"}
        assert status[name]["outbox_backlog"] == 0
    for name in ("sessions", "notifications"):
        assert goals_topic in status[name]["consumer_lag"]
        assert status[name]["dead_lettered_total"][f"{goals_topic} (malformed_json)"] == 2
    assert set(status["sessions"]["scheduler_lag_seconds"]) == {
        "checkin.due_soon",
        "checkin.missed",
        "checkin.escalated",
        "session.reminder",
    }
    assert set(status["goals"]["scheduler_lag_seconds"]) == {"milestone_overdue"}
    table = await services.cli("status")
    assert table.exit_code == 0
    assert "OUTBOX_BACKLOG" in table.output

    kept, revoked, by_id = token("acme"), token("acme"), token("acme")
    authenticated = {
        "goals": "/v1/goals",
        "sessions": "/v1/goals",
        "notifications": "/v1/endpoints",
    }
    async with httpx.AsyncClient(timeout=10) as http:

        async def answers(credential: str) -> set[int]:
            return {
                (
                    await http.get(
                        services.urls[name] + path,
                        headers={"Authorization": f"Bearer {credential}"},
                    )
                ).status_code
                for name, path in authenticated.items()
            }

        assert await answers(revoked) == {200}
        done = await services.cli("revoke", revoked, "--reason", "leaked in a ticket")
        assert done.exit_code == 0, done.output
        token_id = _claims(by_id)["jti"]
        assert (await services.cli("revoke", "--id", token_id)).exit_code == 0

        async def refused_everywhere() -> bool:
            return await answers(revoked) == {401} and await answers(by_id) == {401}

        await eventually(refused_everywhere, timeout=15, what="every service refusing")
        assert await answers(kept) == {200}
        refusal = await http.get(
            services.urls["goals"] + "/v1/goals", headers={"Authorization": f"Bearer {revoked}"}
        )
        assert refusal.headers["content-type"] == "application/problem+json"
        assert "revoked" in refusal.json()["detail"]
    bad = await services.cli("revoke", "not-a-credential")
    assert bad.exit_code == 1
    assert "error:" in bad.output


def _claims(credential: str) -> dict[str, Any]:
    import jwt

    claims: dict[str, Any] = jwt.decode(credential, options={"verify_signature": False})
    return claims
