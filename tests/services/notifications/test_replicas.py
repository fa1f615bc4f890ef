"""Two replicas on one database: every event is delivered exactly once by the pair (the claim
locks rows against the other replica), and every signature verifies."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from services.notifications.app import create_app
from services.notifications.settings import NotificationsSettings
from tests.services.notifications import factories
from tests.services.notifications.conftest import Harness
from tests.support.apps import serving
from tests.support.receiver import Reply, running_receiver


async def test_two_replicas_deliver_each_event_once(
    notifications_settings: Callable[..., NotificationsSettings],
    auth_headers: Callable[..., dict[str, str]],
    broker: Any,
    topic_prefix: str,
) -> None:
    # One attempt at a time per replica against a receiver taking 20 ms: neither replica can
    # drain the queue alone before the other claims.
    settings = notifications_settings(webhook_endpoint_concurrency=1)
    # The second replica shares the database (and so the delivery queue) but consumes other,
    # empty topics: what is under test is the claim, not a consumer-group rebalance.
    idle = notifications_settings(
        database_url=settings.database_url,
        kafka_topic_prefix=f"{topic_prefix}idle.",
        consumer_group="notifications-idle",  # no rebalance of the first replica's group
        webhook_endpoint_concurrency=1,
    )
    first, second = create_app(settings), create_app(idle)
    async with (
        running_receiver(lambda _: Reply(delay=0.02)) as receiver,
        serving(first) as url,
        serving(second),
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        publisher = Harness(
            url=url,
            http=http,
            headers=auth_headers(),
            clock=None,  # type: ignore[arg-type]
            app=first,
            bootstrap=broker.bootstrap_servers,
            topic_prefix=topic_prefix,
            sink=None,  # type: ignore[arg-type]
        )
        _, secret = await publisher.create_endpoint(receiver.url)
        goals = [factories.goal_ref() for _ in range(6)]
        events = [factories.streak_updated(goals[n % 6], current=n) for n in range(60)]
        await publisher.publish(*events)
        received = await receiver.wait_for(len(events), timeout=60)
        # Once every delivery is final with one attempt, no replica can send it again.
        for event in events:
            message = await publisher.wait_message(
                event.id, lambda m: [d["status"] for d in m["deliveries"]] == ["succeeded"]
            )
            assert message["deliveries"][0]["attempts"] == 1
    assert first.state.dispatcher.claimed + second.state.dispatcher.claimed == len(events)
    assert first.state.dispatcher.claimed > 0
    assert second.state.dispatcher.claimed > 0
    ids = Counter(request.headers["webhook-id"] for request in receiver.requests)
    assert set(ids) == {event.id for event in events}
    assert max(ids.values()) == 1
    for request in received:
        Webhook(secret).verify(request.body, request.headers)


async def test_routing_follows_endpoint_changes_made_through_another_replica(
    notifications_settings: Callable[..., NotificationsSettings],
    auth_headers: Callable[..., dict[str, str]],
    broker: Any,
    topic_prefix: str,
) -> None:
    """The consuming replica caches each tenant's endpoints; changes made through the other
    replica (its own engine, its own cache) must reach the very next event's routing."""
    settings = notifications_settings()
    other = notifications_settings(
        database_url=settings.database_url,
        kafka_topic_prefix=f"{topic_prefix}idle.",
        consumer_group="notifications-idle",
    )
    consuming, changing = create_app(settings), create_app(other)
    async with (
        running_receiver() as receiver,
        serving(consuming) as url,
        serving(changing) as other_url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        httpx.AsyncClient(base_url=other_url, timeout=30) as other_http,
    ):
        harness = Harness(
            url=url,
            http=http,
            headers=auth_headers(),
            clock=None,  # type: ignore[arg-type]
            app=consuming,
            bootstrap=broker.bootstrap_servers,
            topic_prefix=topic_prefix,
            sink=None,  # type: ignore[arg-type]
        )
        changer = dataclasses.replace(harness, url=other_url, http=other_http)

        async def routed_to(event: Any) -> set[str]:
            await harness.publish(event)
            message = await harness.wait_message(
                event.id,
                lambda m: (
                    bool(m["deliveries"])
                    and all(d["status"] == "succeeded" for d in m["deliveries"])
                ),
            )
            return {str(d["endpoint_id"]) for d in message["deliveries"]}

        first, _ = await harness.create_endpoint(f"{receiver.url}/first")
        assert await routed_to(factories.streak_updated()) == {first}  # the cache is warm now

        second, _ = await changer.create_endpoint(f"{receiver.url}/second")
        assert await routed_to(factories.streak_updated()) == {first, second}

        deleted = await other_http.delete(f"/v1/endpoints/{first}", headers=harness.headers)
        assert deleted.status_code == 204, deleted.text
        assert await routed_to(factories.streak_updated()) == {second}
