"""One trace from the integrator's POST to the webhook it causes, through real processes.

The three services run as processes with ``OTEL_EXPORTER_OTLP_ENDPOINT``
pointing at a real OTLP/HTTP receiver in this test, which decodes every
export with ``opentelemetry-proto`` (``ExportTraceServiceRequest``). One POST
creates a goal whose first check-in falls due seconds later, with no grace,
and nobody checks in: ``goal.created`` reaches the webhook (and the mentee's
email, through a real SMTP server) in the POST's trace, and the scheduler's
firing of the miss starts a trace of its own that links back to the one that
planned it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import MailKeeper
from tests.support.receiver import Received, Reply, running_receiver
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SERVICES = ("goals", "sessions", "notifications")
QUERY_TOKEN = "query-token-3f9a1c"  # an integrator's secret in its endpoint URL


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    start: int
    end: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]]  # (trace id, span id)


def decode(request: Received) -> list[ExportedSpan]:
    """Every span of one OTLP/HTTP protobuf export."""
    assert request.path == "/v1/traces", request.path
    assert request.headers["content-type"] == "application/x-protobuf"
    export = ExportTraceServiceRequest()
    export.ParseFromString(request.body)
    spans: list[ExportedSpan] = []
    for resource_spans in export.resource_spans:
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ExportedSpan(
                        service=resource["service.name"],
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        start=span.start_time_unix_nano,
                        end=span.end_time_unix_nano,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    )
                )
    return spans


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def trace_id_of(traceparent: str) -> str:
    version, trace_id, _, flags = traceparent.split("-")
    assert version == "00", traceparent
    assert int(flags, 16) & 1, f"not sampled: {traceparent}"
    return trace_id


async def first_due_of(
    http: httpx.AsyncClient,
    urls: dict[str, str],
    headers: dict[str, str],
    goal_id: str,
    *,
    timeout: float,
) -> datetime:
    """When sessions planned the goal's first check-in (waiting until it has heard of it)."""
    planned: list[datetime] = []

    async def first_due() -> bool:
        answer = await http.get(f"{urls['sessions']}/v1/goals/{goal_id}/schedule", headers=headers)
        if answer.status_code == 404:  # not projected yet
            return False
        items = answer.json()["items"]
        planned[:] = [datetime.fromisoformat(i["at"]) for i in items if i["kind"] == "checkin.due"]
        return bool(planned)

    await eventually(first_due, timeout=timeout, what="sessions planning the goal")
    return planned[0]


async def goal_that_misses_soon(
    http: httpx.AsyncClient, urls: dict[str, str], headers: dict[str, str]
) -> str:
    """A goal whose first check-in falls due seconds after it is created, with no grace.

    Sessions plans the first occurrence due after the moment it hears of the goal;
    if the event took longer than the margin (a loaded machine), it planned
    tomorrow's instead: abandon that goal and try again with a wider margin.
    """
    for margin in (10, 20, 40):
        due = (datetime.now(UTC) + timedelta(seconds=margin)).replace(microsecond=0)
        created = await http.post(
            f"{urls['goals']}/v1/goals",
            headers=headers,
            json={
                "title": "Run a half marathon",
                "participants": [
                    {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "UTC"}
                ],
                "policy": {
                    "cadence": {"kind": "daily"},
                    "time_of_day": due.strftime("%H:%M:%S"),
                    "timezone": "UTC",
                    "grace_minutes": 0,
                    "reminder_lead_minutes": [],
                },
            },
        )
        assert created.status_code == 201, created.text
        goal_id: str = created.json()["id"]
        if await first_due_of(http, urls, headers, goal_id, timeout=10 + margin) == due:
            return goal_id
        abandoned = await http.post(f"{urls['goals']}/v1/goals/{goal_id}/abandon", headers=headers)
        assert abandoned.status_code == 200, abandoned.text
    raise AssertionError("sessions never planned a check-in due within 40 s of now")


async def test_one_post_is_one_trace_across_kafka_to_the_webhook_and_the_miss_links_to_it(
    broker: TansuBroker,
    keys_file: Path,
    topic_prefix: str,
    tmp_path: Path,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    headers = auth_headers("acme")
    mailbox = MailKeeper(None)
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    smtp.start()
    try:
        await traced_run(broker, keys_file, topic_prefix, tmp_path, headers, mailbox, smtp.port)
    finally:
        smtp.stop()


async def traced_run(
    broker: TansuBroker,
    keys_file: Path,
    topic_prefix: str,
    tmp_path: Path,
    headers: dict[str, str],
    mailbox: MailKeeper,
    smtp_port: int,
) -> None:
    empty_export_answer = Reply(body=b"", headers={"content-type": "application/x-protobuf"})
    async with (
        running_receiver(lambda _: empty_export_answer) as collector,
        running_receiver() as webhooks,
        httpx.AsyncClient(timeout=15) as http,
    ):
        env = {
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
            "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
            # Standard OpenTelemetry variables only.
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        processes = {name: ServiceProcess(name, env, tmp_path / f"{name}.log") for name in SERVICES}
        try:
            await asyncio.gather(*(asyncio.to_thread(p.start) for p in processes.values()))
            urls = {name: process.url for name, process in processes.items()}
            endpoint = await http.post(
                f"{urls['notifications']}/v1/endpoints",
                headers=headers,
                json={
                    "url": f"{webhooks.url}/hook?token={QUERY_TOKEN}",
                    "event_types": ["goal.created", "checkin.missed"],
                },
            )
            assert endpoint.status_code == 201, endpoint.text
            rule = await http.put(
                f"{urls['notifications']}/v1/email-rules/goal.created",
                headers=headers,
                json={"roles": ["mentee"]},
            )
            assert rule.status_code == 200, rule.text

            goal_id = await goal_that_misses_soon(http, urls, headers)

            def of_the_goal() -> dict[str, Received]:
                bodies = [(json.loads(r.body), r) for r in webhooks.requests]
                return {b["type"]: r for b, r in bodies if b["partitionkey"] == goal_id}

            await eventually(
                lambda: set(of_the_goal()) == {"goal.created", "checkin.missed"},
                timeout=60,
                what="the goal's goal.created and checkin.missed webhooks",
            )
            delivered = of_the_goal()
            post_trace = trace_id_of(delivered["goal.created"].headers["traceparent"])
            miss_trace = trace_id_of(delivered["checkin.missed"].headers["traceparent"])

            spans: list[ExportedSpan] = []

            def exported() -> list[ExportedSpan]:
                spans[:] = [span for request in collector.requests for span in decode(request)]
                return spans

            def chain_of(hook: Received) -> list[str]:
                """The names from a webhook's httpx span up through the exported spans."""
                by_span = {span.span_id: span for span in spans}
                span_id = hook.headers["traceparent"].split("-")[2]
                names: list[str] = []
                while span_id in by_span:
                    names.append(by_span[span_id].name)
                    span_id = by_span[span_id].parent_id
                return names

            def complete() -> bool:
                names = {(s.trace_id, s.service, s.name) for s in exported()}
                # Spans are exported as they end, parents after their children, each process
                # on its own schedule: wait for the very chains asserted below, not only for
                # spans of those names (an attempt retried, say, has two of each).
                if chain_of(delivered["goal.created"])[-1:] != ["POST /v1/goals"]:
                    return False
                if "fire checkin.missed" not in chain_of(delivered["checkin.missed"]):
                    return False
                return {
                    (post_trace, "goals", "POST /v1/goals"),
                    (post_trace, "goals", f"send {topic_prefix}goals"),
                    (post_trace, "sessions", "handle goal.created"),
                    (post_trace, "notifications", "handle goal.created"),
                    (post_trace, "notifications", "route goal.created"),
                    (post_trace, "notifications", "deliver webhook"),
                    (post_trace, "notifications", "deliver email"),
                    (post_trace, "notifications", "POST"),
                    (miss_trace, "sessions", "scheduler pass"),
                    (miss_trace, "sessions", "fire checkin.missed"),
                    (miss_trace, "notifications", "deliver webhook"),
                    (miss_trace, "notifications", "POST"),
                } <= names

            await eventually(complete, timeout=30, what="every span of both traces exported")
        finally:
            for process in processes.values():
                process.stop()

    by_id = {span.span_id: span for span in spans}
    trace = sorted((s for s in spans if s.trace_id == post_trace), key=lambda s: s.start)

    def one(service: str, name: str, trace_id: str = post_trace) -> ExportedSpan:
        (found,) = [
            s for s in spans if (s.trace_id, s.service, s.name) == (trace_id, service, name)
        ]
        return found

    def ancestors(span: ExportedSpan) -> list[ExportedSpan]:
        chain = [span]
        while chain[-1].parent_id and chain[-1].parent_id in by_id:
            chain.append(by_id[chain[-1].parent_id])
        return chain

    # One trace, rooted at the integrator's request, with spans of all three services.
    post = one("goals", "POST /v1/goals")
    assert post.parent_id == ""
    assert post.kind == ProtoSpan.SPAN_KIND_SERVER
    assert post.attributes["http.route"] == "/v1/goals"
    assert {s.service for s in trace} == set(SERVICES)
    assert any(s.service == "goals" and s.name.startswith("INSERT") for s in trace), "no SQL"

    # The background loops' statements (relay and scheduler polls, gauges, leadership) are not
    # traces of their own: every client span belongs to some traced operation.
    orphans = [s for s in spans if s.kind == ProtoSpan.SPAN_KIND_CLIENT and not s.parent_id]
    assert orphans == []
    assert any(s.name.startswith("SELECT") for s in spans)

    # Across Kafka: each consumer's span continues the relay's send span, which continues the
    # request that wrote the outbox row.
    send = one("goals", f"send {topic_prefix}goals")
    assert send.kind == ProtoSpan.SPAN_KIND_PRODUCER
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["cloudevents.event_type"] == "goal.created"
    assert ancestors(send)[-1] == post
    for consumer in ("sessions", "notifications"):
        handle = one(consumer, "handle goal.created")
        assert handle.kind == ProtoSpan.SPAN_KIND_CONSUMER
        assert handle.parent_id == send.span_id
        assert handle.attributes["messaging.destination.name"] == f"{topic_prefix}goals"
        assert handle.attributes["messaging.consumer.group.name"] == f"{topic_prefix}{consumer}"
        assert post.start < send.start < handle.start

    route = one("notifications", "route goal.created")
    assert route.parent_id == one("notifications", "handle goal.created").span_id
    assert route.attributes["followthrough.routing.webhooks"] == 1

    # Ending with the webhook attempt: the request the endpoint got is the httpx span of the
    # delivery, after the notifications service handled the event.
    hook = delivered["goal.created"]
    hook_span = by_id[hook.headers["traceparent"].split("-")[2]]
    assert (hook_span.service, hook_span.name, hook_span.kind) == (
        "notifications",
        "POST",
        ProtoSpan.SPAN_KIND_CLIENT,
    )
    assert hook_span.attributes["url.full"] == f"{webhooks.url}/hook"  # without the query
    assert not [s for s in spans if QUERY_TOKEN in repr(s.attributes)]
    deliver = by_id[hook_span.parent_id]
    assert deliver.name == "deliver webhook"
    assert deliver.parent_id == one("notifications", "handle goal.created").span_id
    assert ancestors(hook_span)[-1] == post
    assert one("notifications", "handle goal.created").start < deliver.start < hook_span.start
    # The email of the same event: its attempt, in the same trace, sent the mail.
    email = one("notifications", "deliver email")
    assert email.parent_id == one("notifications", "handle goal.created").span_id
    assert email.attributes["followthrough.delivery.channel"] == "email"
    assert [m for m in mailbox.messages if "goal.created" in str(m.get("subject", ""))]
    webhook_body = json.loads(hook.body)
    assert trace_id_of(webhook_body["traceparent"]) == post_trace  # CloudEvents extension
    # Causal order along the path that ends at the webhook: each span starts after the one that
    # caused it, from the integrator's request through the relay and the consumer to the attempt,
    # and nothing in the trace descends from the attempt. (Sessions handles the same event on a
    # branch of its own, concurrently, so its spans may start after the attempt.)
    path = list(reversed(ancestors(hook_span)))
    assert path[0] == post
    assert path[-1] == hook_span
    assert all(cause.start <= effect.start for cause, effect in pairwise(path)), path
    assert not [s for s in trace if s.parent_id == hook_span.span_id]

    # The miss fired hours (here: seconds) later is a trace of the scheduler's, linked to the
    # trace that planned it.
    assert miss_trace != post_trace
    fire = one("sessions", "fire checkin.missed", miss_trace)
    assert [trace_id for trace_id, _ in fire.links] == [post_trace]
    assert by_id[fire.parent_id].name == "scheduler pass"
    miss_hook = by_id[delivered["checkin.missed"].headers["traceparent"].split("-")[2]]
    assert fire in ancestors(miss_hook)

    # Log lines inside a span carry its ids beside the correlation id.
    correlation_id = webhook_body["correlationid"]
    handle_sessions = one("sessions", "handle goal.created")
    lines = [
        line
        for line in processes["sessions"].log_lines()
        if line.get("correlation_id") == correlation_id and "trace_id" in line
    ]
    # The miss continues the correlation of the request that planned it, in a trace of its own.
    assert {line["trace_id"] for line in lines} == {post_trace, miss_trace}
    spans_logged = {(line["trace_id"], line["span_id"]) for line in lines}
    assert (post_trace, handle_sessions.span_id) in spans_logged
    assert (miss_trace, fire.span_id) in spans_logged
    request_lines = [
        line for line in processes["goals"].log_lines() if line.get("event") == "http.request"
    ]
    assert any(line.get("trace_id") == post_trace for line in request_lines)
