"""One event end to end, through real processes: goals -> Kafka -> notifications -> webhook.

The broker is Tansu, the three services are uvicorn processes with their own
SQLite files, the receiver is a real HTTP server on loopback, and the
signature is checked with the reference ``standardwebhooks`` library.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from shared.devstack.broker import TansuBroker
from shared.events.catalog.notifications import NotificationSent
from tests.support.kafka import read_events
from tests.support.receiver import running_receiver
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack_env(
    broker: TansuBroker, keys_file: Path, topic_prefix: str, tmp_path: Path
) -> dict[str, str]:
    return {
        "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "FOLLOWTHROUGH_KAFKA_TOPIC_PREFIX": topic_prefix,
        "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
        "FOLLOWTHROUGH_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_DATA_DIR": str(tmp_path / "data"),
        "FOLLOWTHROUGH_ENVIRONMENT": "test",
        "FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "FOLLOWTHROUGH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "NOTIFICATIONS_WEBHOOK_ALLOW_HTTP": "true",
        "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    }


@pytest.fixture
def services(stack_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, ServiceProcess]]:
    started: dict[str, ServiceProcess] = {}
    try:
        for name in ("goals", "sessions", "notifications"):
            process = ServiceProcess(name, stack_env, tmp_path / f"{name}.log")
            started[name] = process
            process.start()
        yield started
    finally:
        for process in started.values():
            process.stop()


async def test_completed_milestone_reaches_the_webhook_once_signed_and_correlated(
    services: dict[str, ServiceProcess],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    headers = auth_headers("acme")
    goals, notifications = services["goals"], services["notifications"]
    async with running_receiver() as receiver, httpx.AsyncClient(timeout=10) as http:
        created = await http.post(
            f"{notifications.url}/v1/endpoints",
            headers=headers,
            json={"url": f"{receiver.url}/hook", "event_types": ["milestone.completed"]},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")

        goal = await http.post(
            f"{goals.url}/v1/goals",
            headers=headers,
            json={
                "title": "Run a half marathon",
                "participants": [
                    {
                        "role": "mentee",
                        "name": "Ada",
                        "email": "ada@example.com",
                        "timezone": "Europe/Berlin",
                    },
                    {"role": "mentor", "name": "Grace", "email": "grace@example.com"},
                ],
                "milestones": [{"title": "Run 10 km"}],
            },
        )
        assert goal.status_code == 201, goal.text
        goal_id = goal.json()["id"]
        milestone_id = goal.json()["milestones"][0]["id"]

        completed = await http.post(
            f"{goals.url}/v1/goals/{goal_id}/milestones/{milestone_id}/complete",
            headers=headers,
            json={"evidence_note": "Strava link"},
        )
        assert completed.status_code == 200, completed.text
        correlation_id = completed.headers["x-correlation-id"]

        (delivered,) = await receiver.wait_for(1)
        # The delivery is final once notification.sent is published; nothing else may arrive.
        await read_events(
            broker.bootstrap_servers,
            f"{topic_prefix}notifications",
            until=lambda events: any(isinstance(e, NotificationSent) for e in events),
        )
        assert len(receiver.requests) == 1

    Webhook(secret).verify(delivered.body, delivered.headers)
    body = json.loads(delivered.body)
    assert body["type"] == "milestone.completed"
    assert body["specversion"] == "1.0"
    assert body["data"]["goal"]["goal_id"] == goal_id
    assert body["data"]["milestone"]["status"] == "completed"
    assert body["correlationid"] == correlation_id
    assert delivered.headers["webhook-id"] == body["id"]

    def lines_with(service: str, event: str) -> list[dict[str, object]]:
        return [
            line
            for line in services[service].log_lines()
            if line.get("event") == event and line.get("correlation_id") == correlation_id
        ]

    assert lines_with("goals", "http.request")
    assert lines_with("sessions", "sessions.goal_event.received")
    assert lines_with("notifications", "notifications.event.accepted")
    assert lines_with("notifications", "delivery.attempt.succeeded")
