"""Dead letters as an operator API: recorded by the consumer, listed by tenant, re-driven as is.

A real sessions service (in-process, over real HTTP) consumes poison from the
real broker; its ``/v1/dead-letters`` then shows what its consumer gave up on,
to the tenant each record names (or, for a record naming no tenant, only to
an operator), and re-driving one puts the original bytes and headers back on
the source topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.sessions.app import create_app
from services.sessions.settings import SessionsSettings
from shared.devstack.broker import TansuBroker
from shared.events.catalog.goals import GOALS_TOPIC
from tests.support.apps import serving
from tests.support.events import milestone_completed
from tests.support.kafka import produce, read_records
from tests.support.waiting import eventually

ORIGINAL_HEADERS = [("traceparent", b"00-abc-01"), ("content-type", b"application/json")]
OPERATOR = ("sessions:read", "sessions:write", "operator")


def poison(tenant: str, **changes: Any) -> bytes:
    document = json.loads(milestone_completed(f"goal-{tenant}").to_json())
    document["tenantid"] = tenant
    document.update(changes)
    return json.dumps(document).encode()


def invalid_data(tenant: str) -> bytes:
    document = json.loads(poison(tenant))
    document["data"]["milestone"]["status"] = "bogus"
    return json.dumps(document).encode()


@pytest.fixture
def settings(settings_for: Callable[..., Any]) -> SessionsSettings:
    built: SessionsSettings = settings_for(SessionsSettings, scheduler_enabled=False)
    return built


async def test_dead_letters_are_listed_per_tenant_and_re_driven_unchanged(
    settings: SessionsSettings,
    broker: TansuBroker,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    topic = settings.topic(GOALS_TOPIC)
    acme, globex = auth_headers("acme"), auth_headers("globex")
    operator = auth_headers("ops", OPERATOR)
    records = {
        "malformed_json": b'{"specversion": "1.0", "id": ',
        "unknown_event_type": poison("acme", type="milestone.exploded", id="evt-unknown"),
        "invalid_event_data": invalid_data("globex"),
    }
    async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        for value in records.values():
            await produce(broker.bootstrap_servers, topic, [value], headers=ORIGINAL_HEADERS)

        async def all_recorded() -> bool:
            answer = await http.get("/v1/dead-letters", headers=operator)
            return len(answer.json()["items"]) == len(records)

        await eventually(all_recorded, timeout=30, what="three dead letters recorded")
        everything = (await http.get("/v1/dead-letters", headers=operator)).json()["items"]
        by_reason = {item["reason"]: item for item in everything}
        assert set(by_reason) == set(records)
        unknown = by_reason["unknown_event_type"]
        assert unknown["tenant_id"] == "acme"
        assert unknown["event_id"] == "evt-unknown"
        assert unknown["event_type"] == "milestone.exploded"
        assert unknown["topic"] == topic
        assert unknown["consumer_group"] == settings.group(settings.consumer_group)
        assert unknown["status"] == "dead"
        assert unknown["redriven_at"] is None
        assert "milestone.exploded" in unknown["error"]
        assert by_reason["malformed_json"]["tenant_id"] is None
        assert by_reason["malformed_json"]["event_id"] is None
        assert by_reason["invalid_event_data"]["tenant_id"] == "globex"
        offsets = {(item["partition"], item["offset"]) for item in everything}
        assert len(offsets) == len(records)

        seen_by_acme = (await http.get("/v1/dead-letters", headers=acme)).json()["items"]
        seen_by_globex = (await http.get("/v1/dead-letters", headers=globex)).json()["items"]
        assert [item["id"] for item in seen_by_acme] == [unknown["id"]]
        assert [item["reason"] for item in seen_by_globex] == ["invalid_event_data"]

        # Another tenant's (or nobody's) dead letter does not exist for this caller.
        for hidden in (by_reason["malformed_json"], by_reason["invalid_event_data"]):
            refused = await http.post(f"/v1/dead-letters/{hidden['id']}/redrive", headers=acme)
            assert refused.status_code == 404
            assert refused.headers["content-type"] == "application/problem+json"

        redriven = await http.post(f"/v1/dead-letters/{unknown['id']}/redrive", headers=acme)
        assert redriven.status_code == 202, redriven.text
        assert redriven.json()["status"] == "redriven"
        assert redriven.json()["redriven_at"] is not None
        again = await http.post(f"/v1/dead-letters/{unknown['id']}/redrive", headers=acme)
        assert again.status_code == 409
        assert again.json()["type"].endswith("/already-redriven")

        on_source = await read_records(
            broker.bootstrap_servers,
            topic,
            until=lambda rs: sum(r.value == records["unknown_event_type"] for r in rs) == 2,
        )
        replayed = [r for r in on_source if r.value == records["unknown_event_type"]][-1]
        assert list(replayed.headers) == ORIGINAL_HEADERS
        assert replayed.key == b"k"

        # Dead again (the type is still unknown): a new dead letter, the old one stays redriven.
        async def dead_again() -> bool:
            answer = await http.get("/v1/dead-letters?status=dead", headers=acme)
            return len(answer.json()["items"]) == 1

        await eventually(dead_again, timeout=30, what="the re-driven record dead-lettered again")
        redriven_list = await http.get("/v1/dead-letters?status=redriven", headers=acme)
        assert [item["id"] for item in redriven_list.json()["items"]] == [unknown["id"]]


async def test_pages_scopes_and_bad_input_answer_problems(
    settings: SessionsSettings,
    broker: TansuBroker,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    topic = settings.topic(GOALS_TOPIC)
    operator = auth_headers("ops", OPERATOR)
    async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        await produce(broker.bootstrap_servers, topic, [b"not json %d" % n for n in range(3)])

        async def three() -> bool:
            answer = await http.get("/v1/dead-letters", headers=operator)
            return len(answer.json()["items"]) == 3

        await eventually(three, timeout=30, what="three dead letters recorded")
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/v1/dead-letters", params=params, headers=operator)).json()
            pages += 1
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert (pages, len(seen), len(set(seen))) == (2, 3, 3)

        reader_only = auth_headers("ops", ("sessions:read", "operator"))
        some_id = seen[0]
        cases = [
            (http.get("/v1/dead-letters"), 401),
            (http.get("/v1/dead-letters", headers=auth_headers("ops", ("goals:read",))), 403),
            (http.post(f"/v1/dead-letters/{some_id}/redrive", headers=reader_only), 403),
            (http.get("/v1/dead-letters?cursor=AAAA", headers=operator), 422),
            (http.get("/v1/dead-letters?status=alive", headers=operator), 422),
            (http.get("/v1/dead-letters?limit=0", headers=operator), 422),
            (http.post("/v1/dead-letters/not-an-id/redrive", headers=operator), 422),
        ]
        for request, status in cases:
            answer = await request
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
