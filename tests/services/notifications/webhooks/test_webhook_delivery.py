"""Webhook delivery end to end: real broker, real HTTP receivers, the retry schedule on a manual
clock, and every delivered webhook verified with the standardwebhooks library."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from shared.events.catalog.notifications import (
    EndpointDisabled,
    NotificationFailed,
    NotificationSent,
)
from tests.services.notifications import factories
from tests.services.notifications.conftest import HarnessFactory
from tests.support.kafka import read_events
from tests.support.receiver import Reply, running_receiver

DEFAULT_SCHEDULE = [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


def webhooks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in message["deliveries"] if d["channel"] == "webhook"]


def attempts_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    (delivery,) = webhooks(message)
    return list(delivery["attempt_log"])


def status_of(message: dict[str, Any]) -> str:
    found = webhooks(message)
    return str(found[0]["status"]) if len(found) == 1 else "none"


async def test_delivered_once_signed_with_the_event_as_body(harness: HarnessFactory) -> None:
    async with running_receiver() as receiver, harness() as h:
        endpoint_id, secret = await h.create_endpoint(
            f"{receiver.url}/hook",
            event_types=["milestone.*"],
            headers={"X-Team": "growth"},
        )
        event = factories.milestone_completed()
        ignored = factories.checkin_missed()
        await h.publish(ignored, event)
        (delivered,) = await receiver.wait_for(1)
        message = await h.wait_message(event.id, lambda m: status_of(m) == "succeeded")
        sent = await read_events(
            h.bootstrap,
            f"{h.topic_prefix}notifications",
            until=lambda events: any(
                isinstance(e, NotificationSent) and e.data.channel == "webhook" for e in events
            ),
        )
        routing = (await h.http.get(f"/v1/events/{ignored.id}/routing", headers=h.headers)).json()
    Webhook(secret).verify(delivered.body, delivered.headers)
    assert delivered.headers["webhook-id"] == event.id
    assert delivered.headers["x-team"] == "growth"
    assert json.loads(delivered.body) == event.to_dict()
    assert len(receiver.requests) == 1
    assert webhooks(message)[0]["endpoint_id"] == endpoint_id
    assert attempts_of(message)[0]["status_code"] == 200
    outcome = next(
        e for e in sent if isinstance(e, NotificationSent) and e.data.channel == "webhook"
    )
    assert outcome.data.event_id == event.id
    assert outcome.data.target == endpoint_id
    assert routing["decisions"][0]["reason"] == "event_type_filter"


async def test_failing_endpoint_runs_the_whole_schedule_then_fails(harness: HarnessFactory) -> None:
    async with (
        running_receiver(lambda _: Reply(status=500, body=b"boom")) as receiver,
        harness() as h,
    ):
        _, secret = await h.create_endpoint(receiver.url)
        event = factories.checkin_missed()
        await h.publish(event)
        await h.wait_message(event.id, lambda m: len(webhooks(m)) == 1)
        message = await h.run_schedule(event.id, until=lambda m: status_of(m) == "failed")
        failed = await read_events(
            h.bootstrap,
            f"{h.topic_prefix}notifications",
            until=lambda events: any(isinstance(e, NotificationFailed) for e in events),
        )
    attempts = attempts_of(message)
    assert [a["status_code"] for a in attempts] == [500] * len(DEFAULT_SCHEDULE)
    assert attempts[-1]["response_excerpt"] == "boom"
    starts = [datetime.fromisoformat(a["started_at"]) for a in attempts]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    for gap, planned in zip(gaps, DEFAULT_SCHEDULE[1:], strict=True):
        assert planned * 0.9 - 0.01 <= gap <= planned * 1.1 + 0.5, (gap, planned)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)
    outcome = next(
        e for e in failed if isinstance(e, NotificationFailed) and e.data.channel == "webhook"
    )
    assert outcome.data.attempts == len(DEFAULT_SCHEDULE)
    assert outcome.data.last_status_code == 500


async def test_retry_after_on_429_is_honoured(harness: HarnessFactory) -> None:
    replies = iter([Reply(status=429, headers={"retry-after": "120"}), Reply(status=200)])
    async with running_receiver(lambda _: next(replies)) as receiver, harness() as h:
        await h.create_endpoint(receiver.url)
        event = factories.checkin_missed()
        await h.publish(event)
        first = await h.wait_message(
            event.id, lambda m: len(webhooks(m)) == 1 and len(attempts_of(m)) == 1
        )
        planned = datetime.fromisoformat(webhooks(first)[0]["next_attempt_at"])
        started = datetime.fromisoformat(attempts_of(first)[0]["started_at"])
        message = await h.run_schedule(event.id, until=lambda m: status_of(m) == "succeeded")
    assert 119 <= (planned - started).total_seconds() <= 121
    assert [a["status_code"] for a in attempts_of(message)] == [429, 200]
    assert len(receiver.requests) == 2


async def test_gone_disables_the_endpoint(harness: HarnessFactory) -> None:
    async with running_receiver(lambda _: Reply(status=410)) as receiver, harness() as h:
        endpoint_id, _ = await h.create_endpoint(receiver.url)
        event = factories.checkin_missed()
        await h.publish(event)
        message = await h.wait_message(event.id, lambda m: status_of(m) == "failed")
        endpoint = (await h.http.get(f"/v1/endpoints/{endpoint_id}", headers=h.headers)).json()
        events = await read_events(
            h.bootstrap,
            f"{h.topic_prefix}notifications",
            until=lambda es: any(isinstance(e, EndpointDisabled) for e in es),
        )
        later = factories.checkin_missed()
        await h.publish(later)
        routed = await h.wait_message(later.id, lambda m: True)
    assert len(attempts_of(message)) == 1
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"] == "gone"
    disabled = next(e for e in events if isinstance(e, EndpointDisabled))
    assert disabled.data.endpoint_id == endpoint_id
    assert disabled.data.reason == "gone"
    assert webhooks(routed) == []


async def test_abort_message_header_stops_retries(harness: HarnessFactory) -> None:
    reply = Reply(status=400, headers={"webhook-delivery": "abort-message"})
    async with running_receiver(lambda _: reply) as receiver, harness() as h:
        endpoint_id, _ = await h.create_endpoint(receiver.url)
        sent = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
        message = await h.wait_message(sent["message_id"], lambda m: status_of(m) == "failed")
    assert len(attempts_of(message)) == 1
    assert len(receiver.requests) == 1


async def test_redirects_are_failures_and_not_followed(harness: HarnessFactory) -> None:
    async with (
        running_receiver() as target,
        running_receiver(
            lambda _: Reply(status=302, headers={"location": f"{target.url}/elsewhere"})
        ) as receiver,
        harness(webhook_retry_schedule_seconds=[0.0, 5.0]) as h,
    ):
        endpoint_id, _ = await h.create_endpoint(receiver.url)
        sent = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
        message = await h.run_schedule(sent["message_id"], until=lambda m: status_of(m) == "failed")
    assert [a["status_code"] for a in attempts_of(message)] == [302, 302]
    assert "redirects are not followed" in attempts_of(message)[0]["error"]
    assert target.requests == []


async def test_failing_for_days_disables_with_endpoint_disabled(harness: HarnessFactory) -> None:
    async with (
        running_receiver(lambda _: Reply(status=503)) as receiver,
        harness(webhook_disable_after_hours=1.0) as h,
    ):
        endpoint_id, _ = await h.create_endpoint(receiver.url)
        event = factories.checkin_missed()
        await h.publish(event)
        await h.wait_message(event.id, lambda m: len(webhooks(m)) == 1)
        message = await h.run_schedule(event.id, until=lambda m: status_of(m) != "pending")
        endpoint = (await h.http.get(f"/v1/endpoints/{endpoint_id}", headers=h.headers)).json()
        events = await read_events(
            h.bootstrap,
            f"{h.topic_prefix}notifications",
            until=lambda es: any(isinstance(e, EndpointDisabled) for e in es),
        )
    # 0 s, 5 s, 5 min, 35 min, 2 h 35 min: the fifth failure is more than an hour after the first.
    assert len(attempts_of(message)) == 5
    assert status_of(message) == "cancelled"
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"] == "failing"
    disabled = next(e for e in events if isinstance(e, EndpointDisabled))
    assert disabled.data.reason == "failing"
    assert disabled.data.failing_since is not None


async def test_rotation_signs_with_both_secrets_for_the_overlap(
    harness: HarnessFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_receiver() as receiver, harness() as h:
        endpoint_id, old = await h.create_endpoint(receiver.url)
        rotated = await h.http.post(f"/v1/endpoints/{endpoint_id}/rotate-secret", headers=h.headers)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        first = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
        await h.wait_message(first["message_id"], lambda m: status_of(m) == "succeeded")
        await h.clock.advance(timedelta(hours=24, minutes=1))
        second = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
        await h.wait_message(second["message_id"], lambda m: status_of(m) == "succeeded")
        listed = (await h.http.get("/v1/endpoints", headers=h.headers)).json()
    during, after = receiver.requests
    assert new != old
    assert len(during.headers["webhook-signature"].split()) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split()) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(old).verify(after.body, after.headers)
    assert "secret" not in json.dumps(listed).replace("previous_secret_expires_at", "")
    logged = capsys.readouterr()
    assert "delivery.attempt.succeeded" in logged.out + logged.err  # the logs were captured
    for secret in (old, new, old.removeprefix("whsec_"), new.removeprefix("whsec_")):
        assert secret not in logged.out + logged.err


async def test_redelivered_event_changes_nothing(harness: HarnessFactory) -> None:
    async with running_receiver() as receiver, harness() as h:
        await h.create_endpoint(receiver.url)
        event = factories.checkin_missed()
        marker = factories.checkin_due_soon()
        await h.publish(event, event, marker)
        await h.wait_message(marker.id, lambda m: status_of(m) == "succeeded")
        message = await h.wait_message(event.id, lambda m: status_of(m) == "succeeded")
    assert len(webhooks(message)) == 1
    assert [r.headers["webhook-id"] for r in receiver.requests].count(event.id) == 1
