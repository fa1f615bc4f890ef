"""The operations API: endpoint management, messages with attempts, replay, recover, routing
and statistics, all tenant-scoped."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.services.notifications import factories
from tests.services.notifications.conftest import HarnessFactory
from tests.support.receiver import Reply, running_receiver


def webhook_deliveries(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in message["deliveries"] if d["channel"] == "webhook"]


async def test_endpoint_lifecycle_and_tenancy(harness: HarnessFactory, auth_headers: Any) -> None:
    async with harness() as h:
        ids = [
            (await h.create_endpoint(f"https://93.184.216.34/hook/{n}", description=f"n{n}"))[0]
            for n in range(3)
        ]
        first = (await h.http.get("/v1/endpoints?limit=2", headers=h.headers)).json()
        second = (
            await h.http.get(
                f"/v1/endpoints?limit=2&cursor={first['next_cursor']}", headers=h.headers
            )
        ).json()
        patched = await h.http.patch(
            f"/v1/endpoints/{ids[0]}",
            headers=h.headers,
            json={
                "event_types": ["checkin.*"],
                "payload_filter": {"goal.category": {"$in": ["health"]}},
                "rate_limit_per_second": 5,
                "enabled": False,
            },
        )
        bad_filter = await h.http.patch(
            f"/v1/endpoints/{ids[0]}", headers=h.headers, json={"payload_filter": {"a": {"$gt": 1}}}
        )
        reserved = await h.http.patch(
            f"/v1/endpoints/{ids[0]}", headers=h.headers, json={"headers": {"webhook-id": "x"}}
        )
        other = auth_headers("globex")
        foreign = await h.http.get(f"/v1/endpoints/{ids[0]}", headers=other)
        foreign_list = (await h.http.get("/v1/endpoints", headers=other)).json()
        deleted = await h.http.delete(f"/v1/endpoints/{ids[1]}", headers=h.headers)
        gone = await h.http.get(f"/v1/endpoints/{ids[1]}", headers=h.headers)
    listed = [e["id"] for e in first["items"] + second["items"]]
    assert sorted(listed) == sorted(ids)
    assert second["next_cursor"] is None
    assert all("secret" not in e for e in first["items"])
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["enabled"] is False
    assert body["disabled_reason"] == "operator"
    assert body["event_types"] == ["checkin.*"]
    assert body["rate_limit_per_second"] == 5
    assert bad_filter.status_code == 422
    assert bad_filter.json()["errors"][0]["field"] == "body.payload_filter"
    assert reserved.status_code == 422
    assert foreign.status_code == 404
    assert foreign_list["items"] == []
    assert deleted.status_code == 204
    assert gone.status_code == 404


async def test_routing_explains_every_target(harness: HarnessFactory) -> None:
    async with running_receiver() as receiver, harness() as h:
        matched, _ = await h.create_endpoint(receiver.url, event_types=["checkin.*"])
        by_type, _ = await h.create_endpoint(receiver.url, event_types=["milestone.completed"])
        by_payload, _ = await h.create_endpoint(
            receiver.url, payload_filter={"goal.category": "career"}
        )
        disabled, _ = await h.create_endpoint(receiver.url, enabled=False)
        event = factories.checkin_missed(factories.goal_ref(category="health"))
        await h.publish(event)
        await receiver.wait_for(1)
        routing = (await h.http.get(f"/v1/events/{event.id}/routing", headers=h.headers)).json()
        missing = await h.http.get("/v1/events/nope/routing", headers=h.headers)
    reasons = {d["target"]: d["reason"] for d in routing["decisions"]}
    assert reasons[matched] == "matched"
    assert reasons[by_type] == "event_type_filter"
    assert reasons[by_payload] == "payload_filter"
    assert reasons[disabled] == "disabled"
    assert reasons["ada@example.com"] == "matched"
    assert reasons["grace@example.com"] == "rule"
    assert missing.status_code == 404


async def test_replay_and_recover_keep_the_webhook_id(
    harness: HarnessFactory, auth_headers: Any
) -> None:
    healthy = False

    def respond(_: Any) -> Reply:
        return Reply(status=200 if healthy else 500)

    async with (
        running_receiver(respond) as receiver,
        harness(webhook_retry_schedule_seconds=[0.0]) as h,
    ):
        endpoint_id, secret = await h.create_endpoint(receiver.url)
        events = [factories.checkin_missed(), factories.checkin_missed()]
        await h.publish(*events)
        for event in events:
            # Settled: the webhook failed and the mentee's email is no longer pending either.
            await h.wait_message(
                event.id,
                lambda m: (
                    [d["status"] for d in webhook_deliveries(m)] == ["failed"]
                    and all(d["status"] != "pending" for d in m["deliveries"])
                ),
            )
        failed = (await h.http.get("/v1/messages?status=failed", headers=h.headers)).json()
        healthy = True
        replay = await h.http.post(
            f"/v1/messages/{events[0].id}/replay",
            headers=h.headers,
            json={"endpoint_id": endpoint_id},
        )
        assert replay.status_code == 202, replay.text
        replayed = await h.wait_message(
            events[0].id,
            lambda m: (
                sorted(d["status"] for d in webhook_deliveries(m)) == ["succeeded", "superseded"]
            ),
        )
        since = replayed["created_at"]
        recover = await h.http.post(
            f"/v1/endpoints/{endpoint_id}/recover",
            headers=h.headers,
            params={"since": since},
        )
        assert recover.status_code == 202, recover.text
        recovered = await h.wait_message(
            events[1].id,
            lambda m: (
                sorted(d["status"] for d in webhook_deliveries(m)) == ["succeeded", "superseded"]
            ),
        )
        stats = (await h.http.get(f"/v1/endpoints/{endpoint_id}/stats", headers=h.headers)).json()
        settled = [await h.message(event.id) for event in events]
        outcomes = (await h.http.get("/v1/deliveries/outcomes", headers=h.headers)).json()
        then = h.clock.now()
        await h.clock.set(then + timedelta(hours=2))
        later = (await h.http.get("/v1/deliveries/outcomes?hours=3", headers=h.headers)).json()
        foreign = await h.http.get("/v1/deliveries/outcomes", headers=auth_headers("globex"))
        too_long = await h.http.get("/v1/deliveries/outcomes?hours=169", headers=h.headers)
    # Outcomes per hour: every delivery once, by its status, in the hour it last changed.
    expected = Counter(d["status"] for m in settled if m for d in m["deliveries"])
    assert expected == {"succeeded": 4, "superseded": 2}  # 2 resent webhooks, 2 emails
    assert outcomes["totals"] == dict(expected)
    assert outcomes["statuses"] == ["succeeded", "superseded"]
    assert len(outcomes["buckets"]) == 24
    assert outcomes["buckets"][-1]["counts"] == dict(expected)
    assert [b["counts"] for b in later["buckets"]] == [
        dict(expected),
        {"succeeded": 0, "superseded": 0},
        {"succeeded": 0, "superseded": 0},
    ]
    assert datetime.fromisoformat(later["buckets"][0]["start"]) <= then
    assert foreign.json()["totals"] == {}
    assert too_long.status_code == 422
    assert {m["id"] for m in failed["items"]} >= {e.id for e in events}
    assert len(recover.json()["deliveries"]) == 1
    resent = next(d for d in webhook_deliveries(recovered) if d["status"] == "succeeded")
    original = next(d for d in webhook_deliveries(recovered) if d["status"] == "superseded")
    assert resent["replay_of"] == original["id"]
    for event in events:
        ids = [
            r.headers["webhook-id"]
            for r in receiver.requests
            if r.headers["webhook-id"] == event.id
        ]
        assert len(ids) == 2  # the failed attempt and the resend, under one id
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)
    assert stats["attempts"] == 4
    assert stats["succeeded"] == 2
    assert stats["success_rate"] == 0.5
    assert stats["median_latency_ms"] is not None


async def test_message_list_filters_and_pages(harness: HarnessFactory) -> None:
    async with harness() as h:
        goal = factories.goal_ref()
        events = [factories.checkin_due_soon(goal) for _ in range(3)] + [
            factories.checkin_completed()
        ]
        await h.publish(*events)
        for event in events:
            await h.wait_message(event.id, lambda m: True)
        by_goal = (
            await h.http.get(f"/v1/messages?goal_id={goal.goal_id}&limit=2", headers=h.headers)
        ).json()
        rest = (
            await h.http.get(
                f"/v1/messages?goal_id={goal.goal_id}&limit=2&cursor={by_goal['next_cursor']}",
                headers=h.headers,
            )
        ).json()
        by_type = (
            await h.http.get("/v1/messages?event_type=checkin.completed", headers=h.headers)
        ).json()
        unrouted = (await h.http.get("/v1/messages?status=unrouted", headers=h.headers)).json()
        bad_cursor = await h.http.get("/v1/messages?cursor=zzz", headers=h.headers)
        detail = (await h.http.get(f"/v1/messages/{events[0].id}", headers=h.headers)).json()
    assert len(by_goal["items"]) == 2
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    assert {m["id"] for m in by_goal["items"] + rest["items"]} == {e.id for e in events[:3]}
    assert [m["id"] for m in by_type["items"]] == [events[3].id]
    assert [m["id"] for m in unrouted["items"]] == [events[3].id]
    assert bad_cursor.status_code == 422
    assert detail["event"]["id"] == events[0].id
    assert detail["event"]["type"] == "checkin.due_soon"
