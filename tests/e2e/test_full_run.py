"""A full run through real processes, read the way an operator reads it: metrics and logs.

The three services run as processes (JSON logs at DEBUG, every secret set to
a fresh random value), with a real webhook receiver, a real SMTP server that
requires a password, and the real broker. One POST creates a goal; before it,
the endpoint and the email rule are set up, and a poison record is put on the
goals topic. Then:

* ``/metrics`` of every service holds every metric the operations issue names,
  with the values this run must have produced;
* the log lines of all three services and the delivery attempts are found by
  the POST's correlation id, in causal order, and every line about the
  events and deliveries it caused carries that id;
* no log line of the run holds a secret it used: credentials, the webhook
  secret, the SMTP password, the signing keys, the link secret, the secrets
  key, or anything of the email body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import MailKeeper
from shared.events.catalog.notifications import NotificationSent
from tests.support.kafka import produce, read_events
from tests.support.receiver import running_receiver
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.e2e,
    # aiosmtpd warns that it offers AUTH without TLS: this server exists to check the password.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

SERVICES = ("goals", "sessions", "notifications")
SMTP_USER = "mailer"


@contextlib.contextmanager
def smtp_server(password: str) -> Iterator[tuple[MailKeeper, int]]:
    """A real SMTP server that refuses mail without the right login."""

    def authenticate(_: Any, __: Any, ___: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            password.encode(),
        )
        return AuthResult(success=ok)

    keeper = MailKeeper(None)
    port = free_port()
    controller = Controller(
        keeper,
        hostname="127.0.0.1",
        port=port,
        ready_timeout=10,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield keeper, port
    finally:
        controller.stop()


def samples(exposition: str, service: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of ``service`` by metric sample name."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.labels.get("service") == service:
                found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(
    metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float | None:
    for found, number in metrics.get(name, []):
        if all(found.get(key) == wanted for key, wanted in labels.items()):
            return number
    return None


def text_parts(raw: bytes) -> list[str]:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]


async def test_one_post_is_followed_through_metrics_and_logs_without_a_secret(
    broker: TansuBroker,
    keys_file: Path,
    private_jwk: dict[str, str],
    topic_prefix: str,
    tmp_path: Path,
    token: Callable[..., str],
) -> None:
    link_secret, secrets_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    smtp_password = secrets.token_urlsafe(18)
    credential = token("acme")
    headers = {"Authorization": f"Bearer {credential}"}
    correlation_id = f"full-run-{secrets.token_hex(6)}"

    with smtp_server(smtp_password) as (mailbox, smtp_port):
        env = {
            "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "FOLLOWTHROUGH_KAFKA_TOPIC_PREFIX": topic_prefix,
            "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
            "FOLLOWTHROUGH_LOG_FORMAT": "json",
            "FOLLOWTHROUGH_LOG_LEVEL": "DEBUG",
            "FOLLOWTHROUGH_DATA_DIR": str(tmp_path / "data"),
            "FOLLOWTHROUGH_ENVIRONMENT": "test",
            "FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "FOLLOWTHROUGH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "FOLLOWTHROUGH_LINK_SIGNING_SECRET": link_secret,
            "NOTIFICATIONS_SECRETS_KEY": secrets_key,
            "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
            "NOTIFICATIONS_SMTP_USERNAME": SMTP_USER,
            "NOTIFICATIONS_SMTP_PASSWORD": smtp_password,
            "NOTIFICATIONS_WEBHOOK_ALLOW_HTTP": "true",
            "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
            "NOTIFICATIONS_DISPATCH_STATS_SECONDS": "0.5",
        }
        processes = {name: ServiceProcess(name, env, tmp_path / f"{name}.log") for name in SERVICES}
        try:
            await asyncio.gather(*(asyncio.to_thread(p.start) for p in processes.values()))
            urls = {name: process.url for name, process in processes.items()}
            async with running_receiver() as receiver, httpx.AsyncClient(timeout=15) as http:
                endpoint = await http.post(
                    f"{urls['notifications']}/v1/endpoints",
                    headers=headers,
                    json={"url": f"{receiver.url}/hook", "event_types": ["goal.*"]},
                )
                assert endpoint.status_code == 201, endpoint.text
                webhook_secret = endpoint.json()["secret"]
                rule = await http.put(
                    f"{urls['notifications']}/v1/email-rules/goal.created",
                    headers=headers,
                    json={"roles": ["mentee"]},
                )
                assert rule.status_code == 200, rule.text
                refused = await http.post(
                    f"{urls['goals']}/v1/goals", headers=headers, json={"title": ""}
                )
                assert refused.status_code == 422
                await produce(broker.bootstrap_servers, f"{topic_prefix}goals", [b"{poison"])

                # The one POST this run follows.
                created = await http.post(
                    f"{urls['goals']}/v1/goals",
                    headers={**headers, "X-Correlation-ID": correlation_id},
                    json={
                        "title": "Run a half marathon",
                        "participants": [
                            {
                                "role": "mentee",
                                "name": "Ada",
                                "email": "ada@example.com",
                                "timezone": "Europe/Berlin",
                            }
                        ],
                        "policy": {
                            "cadence": {"kind": "weekly", "weekdays": ["MO"]},
                            "time_of_day": "09:00",
                            "timezone": "Europe/Berlin",
                        },
                    },
                )
                assert created.status_code == 201, created.text
                assert created.headers["x-correlation-id"] == correlation_id
                goal_id = created.json()["id"]

                (webhook,) = await receiver.wait_for(1)
                outcomes = await read_events(
                    broker.bootstrap_servers,
                    f"{topic_prefix}notifications",
                    until=lambda events: len(events) >= 2,
                )
                await eventually(lambda: len(mailbox.messages) >= 1, what="the email")
                scraped = await scrape_when_settled(http, urls, topic_prefix)
        finally:
            for process in processes.values():
                process.stop()

    Webhook(webhook_secret).verify(webhook.body, webhook.headers)  # the secret was in use
    goal_created = json.loads(webhook.body)
    assert goal_created["type"] == "goal.created"
    assert goal_created["correlationid"] == correlation_id
    assert {type(event) for event in outcomes} == {NotificationSent}
    for event in outcomes:
        assert (event.correlationid, event.causationid) == (correlation_id, goal_created["id"])

    check_metrics(scraped, topic_prefix)
    lines = {name: list(process.log_lines()) for name, process in processes.items()}
    check_correlated_logs(lines, correlation_id, goal_created["id"], goal_id, outcomes)

    (mail,) = mailbox.messages
    body_lines = [
        line.strip()
        for part in text_parts(mail["content"])
        for line in part.splitlines()
        if len(line.strip()) >= 12
    ]
    assert body_lines, "the email has a body to look for"
    used = {
        "credential": credential,
        "credential signature": credential.rsplit(".", 1)[-1],
        "webhook secret": webhook_secret,
        "webhook key": webhook_secret.removeprefix("whsec_"),
        "SMTP password": smtp_password,
        "signing key": private_jwk["d"],
        "link secret": link_secret,
        "secrets key": secrets_key,
        **{f"email body line {n}": line for n, line in enumerate(body_lines)},
    }
    logs = {name: process.log_path.read_text() for name, process in processes.items()}
    assert sum(len(text.splitlines()) for text in logs.values()) > 40
    leaks = [
        f"{what} in the {name} log"
        for what, secret in used.items()
        for name, text in logs.items()
        if secret in text
    ]
    assert leaks == []


async def scrape_when_settled(
    http: httpx.AsyncClient, urls: dict[str, str], topic_prefix: str
) -> dict[str, dict[str, list[tuple[dict[str, str], float]]]]:
    """Every service's metrics, once the gauges refreshed on their own clocks show the run."""
    scraped: dict[str, dict[str, list[tuple[dict[str, str], float]]]] = {}

    async def settled() -> bool:
        for name, url in urls.items():
            scraped[name] = samples((await http.get(f"{url}/metrics")).text, name)
        notifications, sessions = scraped["notifications"], scraped["sessions"]
        lag = [v for _, v in notifications.get("followthrough_consumer_lag", [])]
        # A partition's lag shows once a fetch from it has answered (it carries the high
        # watermark): each consumer's partitions come in on their own fetches.
        sessions_lag = [v for _, v in sessions.get("followthrough_consumer_lag", [])]
        return (
            all(value(m, "followthrough_outbox_backlog") == 0 for m in scraped.values())
            and value(notifications, "followthrough_endpoints", state="enabled") == 1
            # Intake: every partition of goals, sessions and privacy; the erasure consumer:
            # privacy's again. All caught up.
            and len(lag) == 24
            and set(lag) == {0}
            # Sessions: goals and privacy, every partition, caught up.
            and len(sessions_lag) == 12
            and set(sessions_lag) == {0}
            and value(sessions, "followthrough_scheduler_lag_seconds", kind="checkin.missed")
            is not None
            and all(  # sessions reads goals on its own pace: the webhook does not wait for it
                value(
                    m, "followthrough_events_consumed_total", type="goal.created", outcome="handled"
                )
                is not None
                for m in (sessions, notifications)
            )
        )

    await eventually(settled, timeout=30, interval=0.2, what="the gauges to show the run")
    return scraped


def check_metrics(
    scraped: dict[str, dict[str, list[tuple[dict[str, str], float]]]], topic_prefix: str
) -> None:
    goals, sessions, notifications = (scraped[name] for name in SERVICES)
    goals_topic = f"{topic_prefix}goals"

    # HTTP by route and status, with latency.
    assert (
        value(
            goals,
            "followthrough_http_requests_total",
            method="POST",
            route="/v1/goals",
            status="201",
        )
        == 1
    )
    assert (
        value(
            goals,
            "followthrough_http_requests_total",
            method="POST",
            route="/v1/goals",
            status="422",
        )
        == 1
    )
    assert (
        value(
            notifications,
            "followthrough_http_requests_total",
            method="PUT",
            route="/v1/email-rules/{event_type}",
            status="200",
        )
        == 1
    )
    count = value(
        goals, "followthrough_http_request_duration_seconds_count", method="POST", route="/v1/goals"
    )
    assert count == 2
    # Events produced and consumed by type.
    assert value(goals, "followthrough_events_produced_total", type="goal.created") == 1
    assert (
        value(notifications, "followthrough_events_produced_total", type="notification.sent") == 2
    )
    for consumer in (sessions, notifications):
        handled = value(
            consumer, "followthrough_events_consumed_total", type="goal.created", outcome="handled"
        )
        assert handled == 1
        # Handler errors: none (the poison never reached a handler); dead letters: the poison.
        for kind in ("transient", "event"):
            assert value(consumer, "followthrough_handler_errors_total", kind=kind) == 0
        assert (
            value(
                consumer,
                "followthrough_dead_lettered_total",
                topic=goals_topic,
                reason="malformed_json",
            )
            == 1
        )
        assert (
            value(
                consumer,
                "followthrough_dead_lettered_total",
                topic=goals_topic,
                reason="handler_failed",
            )
            == 0
        )
    # Outbox backlog and the age of its oldest row: all published.
    for service in (goals, sessions, notifications):
        assert value(service, "followthrough_outbox_backlog") == 0
        assert value(service, "followthrough_outbox_oldest_age_seconds") == 0
    # Consumer lag per partition, for every partition the member holds.
    partitions = {
        (labels["topic"], labels["partition"])
        for labels, _ in sessions["followthrough_consumer_lag"]
    }
    privacy_topic = f"{topic_prefix}privacy"
    assert partitions == {
        (topic, str(p)) for topic in (goals_topic, privacy_topic) for p in range(6)
    }
    # Notifications reads privacy in two groups (intake and erasure): each keeps its own series.
    privacy_groups = {
        labels["group"]
        for labels, _ in notifications["followthrough_consumer_lag"]
        if labels["topic"] == privacy_topic
    }
    assert len(privacy_groups) == 2
    # Scheduler lag per kind of timer: nothing due yet.
    for kind in ("checkin.due_soon", "checkin.missed", "checkin.escalated", "session.reminder"):
        assert value(sessions, "followthrough_scheduler_lag_seconds", kind=kind) == 0
    assert value(goals, "followthrough_scheduler_lag_seconds", kind="milestone_overdue") == 0
    # Deliveries by channel and outcome; delivery latency from the event's time.
    for channel in ("webhook", "email"):
        assert (
            value(
                notifications,
                "followthrough_deliveries_total",
                channel=channel,
                outcome="succeeded",
            )
            == 1
        )
        assert (
            value(
                notifications, "followthrough_deliveries_total", channel=channel, outcome="failed"
            )
            == 0
        )
        latency = value(
            notifications, "followthrough_delivery_latency_seconds_sum", channel=channel
        )
        observed = value(
            notifications, "followthrough_delivery_latency_seconds_count", channel=channel
        )
        assert observed == 1
        assert latency is not None
        assert 0 < latency < 30
    # Endpoints by state.
    states = {
        labels["state"]: number for labels, number in notifications["followthrough_endpoints"]
    }
    assert states == {"enabled": 1, "disabled": 0, "failing": 0}


def check_correlated_logs(
    lines: dict[str, list[dict[str, Any]]],
    correlation_id: str,
    goal_event_id: str,
    goal_id: str,
    outcomes: list[Any],
) -> None:
    chain = {goal_event_id, *(event.id for event in outcomes)}
    correlated = {
        name: [line for line in found if line.get("correlation_id") == correlation_id]
        for name, found in lines.items()
    }

    def first(service: str, event: str, **fields: Any) -> dict[str, Any]:
        matching = [
            line
            for line in correlated[service]
            if line["event"] == event and all(line.get(k) == v for k, v in fields.items())
        ]
        assert matching, f"no {event} line in {service} with correlation id {correlation_id}"
        return matching[0]

    request = first("goals", "http.request", method="POST", route="/v1/goals", status=201)
    emitted = first("goals", "goals.event.emitted", event_type="goal.created")
    published = first("goals", "outbox.published", event_id=goal_event_id)
    received = first("sessions", "sessions.goal_event.received", event_id=goal_event_id)
    accepted = first("notifications", "notifications.event.accepted", event_id=goal_event_id)
    attempts = [
        line for line in correlated["notifications"] if line["event"].startswith("delivery.attempt")
    ]
    assert {line["event"] for line in attempts} == {"delivery.attempt.succeeded"}
    assert {line.get("channel") for line in attempts} == {"webhook", "email"}
    assert all(line.get("tenant_id") == "acme" for line in attempts)

    # Causal order: emitted, published, consumed by both, delivered, the outcome published.
    def at(line: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(line["timestamp"])

    assert at(emitted) <= at(request)
    assert at(emitted) < at(published) < at(received)
    assert at(published) < at(accepted)
    attempt_of = {line["delivery_id"]: line for line in attempts}
    for event in outcomes:
        attempt = attempt_of[event.data.delivery_id]
        outcome = first("notifications", "outbox.published", event_id=event.id)
        assert at(accepted) < at(attempt) < at(outcome)

    # Every line about an event of the chain, or a delivery of it, carries the correlation id.
    deliveries = {line["delivery_id"] for line in attempts}
    about_the_chain = [
        line
        for found in lines.values()
        for line in found
        if line.get("event_id") in chain
        or line.get("delivery_id") in deliveries
        or line.get("goal_id") == goal_id
    ]
    assert len(about_the_chain) >= len(attempts) + 3
    uncorrelated = [
        line for line in about_the_chain if line.get("correlation_id") != correlation_id
    ]
    assert uncorrelated == []
    for service in SERVICES:
        assert correlated[service], f"{service} logged nothing with the correlation id"
