"""Fixtures for the notifications tests: the service in-process over real HTTP, a manual clock,
and a harness that publishes domain events to the real broker and watches deliveries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.notifications.app import create_app
from services.notifications.settings import NotificationsSettings
from services.notifications.webhooks.ssrf import Resolver
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import SmtpSink
from shared.events.envelope import CloudEvent
from tests.support.apps import serving


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def notifications_settings(
    settings_for: Callable[..., Any],
) -> Callable[..., NotificationsSettings]:
    def build(**overrides: Any) -> NotificationsSettings:
        values: dict[str, Any] = {
            "webhook_allow_http": True,
            "webhook_allowed_networks": ["127.0.0.1/32"],
            "dispatch_poll_seconds": 0.05,
            "webhook_timeout_seconds": 5.0,
            "digest_poll_seconds": 0.1,
            "smtp_timeout_seconds": 5.0,
        }
        values.update(overrides)
        settings: NotificationsSettings = settings_for(NotificationsSettings, **values)
        return settings

    return build


@dataclass
class Harness:
    url: str
    http: httpx.AsyncClient
    headers: dict[str, str]
    clock: ManualClock
    app: Any
    bootstrap: str
    topic_prefix: str
    sink: SmtpSink

    async def create_endpoint(self, url: str, **fields: Any) -> tuple[str, str]:
        response = await self.http.post(
            "/v1/endpoints", headers=self.headers, json={"url": url, **fields}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return str(body["id"]), str(body["secret"])

    async def publish(self, *events: CloudEvent) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            for event in events:
                await producer.send_and_wait(
                    f"{self.topic_prefix}{event.topic}",
                    value=event.to_json(),
                    key=event.partitionkey.encode(),
                )
        finally:
            await producer.stop()

    async def message(self, message_id: str) -> dict[str, Any] | None:
        response = await self.http.get(f"/v1/messages/{message_id}", headers=self.headers)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_message(
        self,
        message_id: str,
        until: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.message(message_id)
                if message is not None and until(message):
                    return message
                await asyncio.sleep(0.05)

    async def run_schedule(
        self, message_id: str, *, until: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> dict[str, Any]:
        """Move the clock to each next attempt until ``until`` holds (no real waiting)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.message(message_id)
                if message is not None and until(message):
                    return message
                due = [
                    datetime.fromisoformat(d["next_attempt_at"])
                    for d in (message or {"deliveries": []})["deliveries"]
                    if d["status"] == "pending" and d["next_attempt_at"]
                ]
                if due and min(due) > self.clock.now():
                    await self.clock.set(min(due) + timedelta(milliseconds=1))
                    self.app.state.dispatcher.wake.set()
                await asyncio.sleep(0.05)


HarnessFactory = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def harness(
    notifications_settings: Callable[..., NotificationsSettings],
    clock: ManualClock,
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> HarnessFactory:
    @contextlib.asynccontextmanager
    async def start(
        *, resolver: Resolver | None = None, tenant: str = "acme", **overrides: Any
    ) -> AsyncIterator[Harness]:
        sink = SmtpSink(port=free_port())
        sink.start()
        overrides.setdefault("smtp_port", sink.port)
        settings = notifications_settings(**overrides)
        app = create_app(settings, clock=clock, resolver=resolver)
        try:
            async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
                yield Harness(
                    url=url,
                    http=http,
                    headers=auth_headers(tenant),
                    clock=clock,
                    app=app,
                    bootstrap=broker.bootstrap_servers,
                    topic_prefix=topic_prefix,
                    sink=sink,
                )
        finally:
            sink.stop()

    return start
