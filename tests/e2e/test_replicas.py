"""Two replicas of each service on one broker and PostgreSQL, one of each killed mid-stream.

Both replicas of every service start together; the one that takes its
service's outbox-relay leadership is the one that will die. A steady stream
then runs through the other's API: new goals (goal.created), check-ins
(checkin.completed) and coaching sessions whose reminder timer is due two
seconds later (session.reminder, fired by the sessions schedulers). Partway
through, the leader of every service is killed with ``kill -9``: its peer
must take over its partitions, its outbox relay, its timers and its leased
deliveries.

At a real webhook receiver every notification must arrive, under one
webhook-id each; a repeat of that id (at least once, after a kill between
sending and recording) must be the same message. On the sessions topic no
timer may have fired twice: a timer's event id is derived from the timer, so
two firings would show as one id with two different records (the relay
re-publishing after a kill sends the same bytes again, which is allowed).

Client requests go to the survivors only: a request cut off by the kill is
the client's to retry (with its Idempotency-Key); what this test is about is
the work a replica does in the background.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from shared.devstack.broker import TansuBroker
from tests.support import postgres
from tests.support.kafka import read_records
from tests.support.receiver import Receiver, running_receiver
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

SERVICES = ("goals", "sessions", "notifications")
SEED_GOALS = 6
STREAM_STEPS = 60  # one request every STEP_SECONDS: goal, check-in, coaching session, ...
STEP_SECONDS = 0.25
KILL_AT_STEP = 24
MENTEE = {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "UTC"}


@pytest.fixture
def databases(postgres_reachable: bool) -> Iterator[dict[str, str]]:
    """One PostgreSQL database per service (replicas need a database they can share)."""
    if not postgres_reachable:
        pytest.skip(f"PostgreSQL not reachable at {postgres.ADMIN_DSN}")
    created = {name: postgres.create_database(name) for name in SERVICES}
    try:
        yield {name: url for name, (_, url) in created.items()}
    finally:
        for database, _ in created.values():
            postgres.drop_database(database)


def notification_key(body: dict[str, Any]) -> tuple[str, str]:
    """What one notification is about: its type and the goal, check-in or session."""
    data = body["data"]
    kind = body["type"]
    if kind == "goal.created":
        return kind, data["goal"]["goal_id"]
    if kind == "checkin.completed":
        return kind, data["checkin"]["checkin_id"]
    return kind, data["session"]["session_id"]


async def test_two_replicas_each_lose_nothing_and_fire_nothing_twice_when_one_is_killed(
    broker: TansuBroker,
    databases: dict[str, str],
    keys_file: Path,
    topic_prefix: str,
    tmp_path: Path,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    env = {
        "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "FOLLOWTHROUGH_KAFKA_TOPIC_PREFIX": topic_prefix,
        "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
        "FOLLOWTHROUGH_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_DATA_DIR": str(tmp_path / "data"),
        "FOLLOWTHROUGH_ENVIRONMENT": "test",
        "FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "FOLLOWTHROUGH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "FOLLOWTHROUGH_OUTBOX_POLL_SECONDS": "0.5",
        "GOALS_DATABASE_URL": databases["goals"],
        "SESSIONS_DATABASE_URL": databases["sessions"],
        "NOTIFICATIONS_DATABASE_URL": databases["notifications"],
        "NOTIFICATIONS_WEBHOOK_ALLOW_HTTP": "true",
        "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        # A killed dispatcher's claims come free after this long, not after two minutes.
        "NOTIFICATIONS_DISPATCH_LEASE_SECONDS": "4",
        "NOTIFICATIONS_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0, 1, 2, 5, 10, 20]",
        "NOTIFICATIONS_SMTP_PORT": "9",  # the session reminder's email rule is off below
    }
    replicas = [
        ServiceProcess(name, env, tmp_path / f"{name}-{side}.log")
        for name in SERVICES
        for side in "AB"
    ]
    headers = auth_headers("acme")
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start, 60.0) for p in replicas))
        # The replica that took its service's relay leadership is the one to kill.
        await eventually(
            lambda: all(_leader(replicas, name) for name in SERVICES),
            timeout=30,
            what="a relay leader in every service",
        )
        doomed = {name: _leader(replicas, name)[0] for name in SERVICES}
        survivor = {p.name: p for p in replicas if p is not doomed[p.name]}
        url = {name: survivor[name].url for name in SERVICES}
        async with (
            running_receiver() as receiver,
            httpx.AsyncClient(timeout=20, headers=headers) as http,
        ):
            secret = await _set_up(http, url, receiver)
            expected, killed_at, killed_wall = await _stream(http, url, doomed)
            waited = await _all_delivered(receiver, expected)
            sessions_records = await read_records(
                broker.bootstrap_servers,
                f"{topic_prefix}sessions",
                until=lambda records: _reminders(records) >= len(expected["session.reminder"]),
                timeout=30,
            )
            deliveries = list(receiver.requests)
        survivors_alive = all(p.process is not None for p in survivor.values())
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in replicas))
    assert survivors_alive

    # Every notification arrived, under one webhook-id; a repeated id is the same message.
    verifier = Webhook(secret)
    ids_by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for request in deliveries:
        verifier.verify(request.body, request.headers)
        body = json.loads(request.body)
        ids_by_key[notification_key(body)].add(request.headers["webhook-id"])
        bodies[request.headers["webhook-id"]].add(request.body)
    wanted = {(kind, key) for kind, keys in expected.items() for key in keys}
    assert set(ids_by_key) == wanted
    assert all(len(ids) == 1 for ids in ids_by_key.values()), "a notification under two ids"
    assert all(len(found) == 1 for found in bodies.values())
    repeats = Counter(request.headers["webhook-id"] for request in deliveries)
    duplicates = sum(count - 1 for count in repeats.values())
    # At least once: only what A had sent but not recorded when it died may come twice.
    assert duplicates <= 10, f"{duplicates} duplicate deliveries"

    # No timer fired twice: one record per event id, or the same bytes again (a re-publish).
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for record in sessions_records:
        by_id[json.loads(record.value)["id"]].add(record.value)
    assert all(len(values) == 1 for values in by_id.values()), "a timer fired twice"
    reminders = {
        json.loads(values.pop())["data"]["session"]["session_id"]
        for values in by_id.values()
        if b'"session.reminder"' in next(iter(values))
    }
    assert reminders == expected["session.reminder"]
    # The kill was mid-stream: work was still arriving and firing after it.
    fired_after = [request for request in deliveries if request.at > killed_at + 1.0]
    assert fired_after, "nothing was delivered after the kill"
    assert waited < 90

    # A was doing the work when it died, and B took it over: each relay's leadership, and
    # every partition of the consumed topics.
    def after_kill(process: ServiceProcess, event: str) -> list[dict[str, Any]]:
        return [
            line
            for line in process.log_lines()
            if line["event"] == event and datetime.fromisoformat(line["timestamp"]) > killed_wall
        ]

    for name in SERVICES:
        takeovers = [
            line for line in after_kill(survivor[name], "leadership.acquired") if _is_relay(line)
        ]
        assert takeovers, f"{name}: no relay takeover"
    # Each consumer group's last assignment on the survivor: every partition of its topics
    # (6 each). Sessions and notifications each read privacy in an erasure group too.
    groups = {
        "sessions": [{"goals"}, {"privacy"}],
        "notifications": [{"goals", "sessions", "privacy"}, {"privacy"}],
    }
    for name, topic_sets in groups.items():
        assignments = after_kill(survivor[name], "consumer.partitions.assigned")
        assert assignments, f"{name}: the survivor was never given the partitions"
        latest = {line["group"]: line["partitions"] for line in assignments}
        held_topics = sorted(
            sorted({part.rsplit(":", 1)[0].rsplit(".", 1)[-1] for part in parts})
            for parts in latest.values()
        )
        assert held_topics == sorted(sorted(topics) for topics in topic_sets)
        for group, parts in latest.items():
            topics = {part.rsplit(":", 1)[0] for part in parts}
            assert len(set(parts)) == 6 * len(topics), f"{name} {group}: {parts}"
        held = [
            line
            for line in doomed[name].log_lines()
            if line["event"] == "consumer.partitions.assigned" and line["partitions"]
        ]
        assert held, f"{name}: the killed replica held no partitions"


def _is_relay(line: dict[str, Any]) -> bool:
    """A leadership line about the outbox relay (the retention purger has a lease of its own,
    taken on its first round and retried only once a minute, so it says nothing here)."""
    return str(line.get("name", "")).endswith(":outbox-relay")


def _leader(replicas: list[ServiceProcess], name: str) -> list[ServiceProcess]:
    """The replicas of ``name`` holding relay leadership now (last acquired, not lost since)."""

    def holds(process: ServiceProcess) -> bool:
        changes = [
            line["event"]
            for line in process.log_lines()
            if line["event"] in ("leadership.acquired", "leadership.lost") and _is_relay(line)
        ]
        return bool(changes) and changes[-1] == "leadership.acquired"

    return [p for p in replicas if p.name == name and holds(p)]


async def _set_up(http: httpx.AsyncClient, url: dict[str, str], receiver: Receiver) -> str:
    endpoint = await http.post(
        f"{url['notifications']}/v1/endpoints",
        json={
            "url": f"{receiver.url}/hook",
            "event_types": ["goal.created", "checkin.completed", "session.reminder"],
        },
    )
    assert endpoint.status_code == 201, endpoint.text
    for event_type in ("session.reminder", "session.scheduled"):
        quiet = await http.put(
            f"{url['notifications']}/v1/email-rules/{event_type}", json={"roles": []}
        )
        assert quiet.status_code == 200, quiet.text
    return str(endpoint.json()["secret"])


async def _stream(
    http: httpx.AsyncClient,
    url: dict[str, str],
    doomed: dict[str, ServiceProcess],
) -> tuple[dict[str, set[str]], float, datetime]:
    """The steady stream through the survivors; kills the doomed replicas partway.

    Returns what to expect, and when the kill happened (loop time and wall clock).
    """
    expected: dict[str, set[str]] = {
        "goal.created": set(),
        "checkin.completed": set(),
        "session.reminder": set(),
    }
    seeds = [await _create_goal(http, url, f"Seed {n}") for n in range(SEED_GOALS)]
    expected["goal.created"].update(seeds)

    async def projected() -> bool:
        answers = [
            await http.get(f"{url['sessions']}/v1/goals/{goal_id}/checkins") for goal_id in seeds
        ]
        return all(answer.status_code == 200 for answer in answers)

    await eventually(projected, timeout=60, interval=0.2, what="the seed goals in sessions")
    killed_at = 0.0
    killed_wall = datetime.now(UTC)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for step in range(STREAM_STEPS):
        if step == KILL_AT_STEP:
            # Stamped before the kill: a busy peer can take over within milliseconds of it.
            killed_at, killed_wall = loop.time(), datetime.now(UTC)
            await asyncio.gather(*(asyncio.to_thread(p.kill) for p in doomed.values()))
        goal_id = seeds[step % SEED_GOALS]
        match step % 3:
            case 0:
                expected["goal.created"].add(await _create_goal(http, url, f"Goal {step}"))
            case 1:
                checkin = await http.post(
                    f"{url['sessions']}/v1/checkins", json={"goal_id": goal_id}
                )
                assert checkin.status_code == 201, checkin.text
                expected["checkin.completed"].add(checkin.json()["id"])
            case _:
                starts = datetime.now(UTC) + timedelta(minutes=1, seconds=2)
                session = await http.post(
                    f"{url['sessions']}/v1/sessions",
                    json={
                        "goal_id": goal_id,
                        "starts_at": starts.isoformat(),
                        "duration_minutes": 30,
                        "location": "Room 4",
                        "reminder_lead_minutes": [1],
                    },
                )
                assert session.status_code == 201, session.text
                expected["session.reminder"].add(session.json()["id"])
        await asyncio.sleep(max(0.0, started + (step + 1) * STEP_SECONDS - loop.time()))
    return expected, killed_at, killed_wall


async def _create_goal(http: httpx.AsyncClient, url: dict[str, str], title: str) -> str:
    created = await http.post(
        f"{url['goals']}/v1/goals", json={"title": title, "participants": [MENTEE]}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _all_delivered(receiver: Receiver, expected: dict[str, set[str]]) -> float:
    wanted = {(kind, key) for kind, keys in expected.items() for key in keys}
    started = time.monotonic()

    def complete() -> bool:
        seen = {notification_key(json.loads(request.body)) for request in receiver.requests}
        return wanted <= seen

    await eventually(complete, timeout=90, interval=0.25, what="every notification delivered")
    return time.monotonic() - started


def _reminders(records: list[Any]) -> int:
    return len({record.value for record in records if b'"session.reminder"' in record.value})
