"""Endpoints that hang, reset the connection or trickle their answer: each attempt ends in
time with the right error, and a hanging endpoint never delays a healthy one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.services.notifications import factories
from tests.services.notifications.conftest import HarnessFactory
from tests.support.receiver import Reply, running_receiver

# About HTTP and the guard, not the database: once is enough.
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    """A raw-socket HTTP server on loopback, for misbehaviour a framework would not allow."""
    connections: set[asyncio.Task[Any]] = set()

    async def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            connections.discard(task)
            writer.close()

    server = await asyncio.start_server(track, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
    await writer.drain()
    while True:  # one byte every 200 ms: never idle long enough for a per-read timeout
        writer.write(b".")
        await writer.drain()
        await asyncio.sleep(0.2)


def only_webhook(message: dict[str, Any]) -> dict[str, Any]:
    (delivery,) = [d for d in message["deliveries"] if d["channel"] == "webhook"]
    return dict(delivery)


async def first_attempt(h: Any, url: str) -> dict[str, Any]:
    endpoint_id, _ = await h.create_endpoint(url)
    sent = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
    message = await h.wait_message(
        sent["message_id"], lambda m: bool(only_webhook(m)["attempt_log"])
    )
    delivery = only_webhook(message)
    assert delivery["status"] == "pending"  # failed, retry scheduled
    assert delivery["next_attempt_at"] is not None
    return dict(delivery["attempt_log"][0])


@SQLITE_ONLY
async def test_connection_reset_is_a_failed_attempt(harness: HarnessFactory) -> None:
    async with raw_server(reset) as url, harness() as h:
        attempt = await first_attempt(h, url)
    assert attempt["status_code"] is None
    assert attempt["error"]


@SQLITE_ONLY
async def test_trickling_body_hits_the_total_deadline(harness: HarnessFactory) -> None:
    async with raw_server(trickle) as url, harness(webhook_timeout_seconds=1.5) as h:
        attempt = await first_attempt(h, url)
    assert attempt["status_code"] is None
    assert attempt["error"] == "timed out after 1.5 s"


@SQLITE_ONLY
async def test_hanging_endpoint_times_out(harness: HarnessFactory) -> None:
    release = asyncio.Event()

    async def hang(_: Any) -> Reply:
        await release.wait()
        return Reply()

    async with running_receiver(hang) as receiver, harness(webhook_timeout_seconds=1.0) as h:
        attempt = await first_attempt(h, receiver.url)
        release.set()
    assert attempt["error"] == "timed out after 1 s"


async def test_hanging_endpoint_does_not_delay_a_healthy_one(harness: HarnessFactory) -> None:
    release = asyncio.Event()
    hanging = 0

    async def hang(_: Any) -> Reply:
        nonlocal hanging
        hanging += 1
        await release.wait()
        return Reply()

    # Four attempts in flight at most, two per endpoint: a shared pool would now be full of
    # the stuck endpoint's attempts; lanes keep two of the four for everyone else.
    async with (
        running_receiver(hang) as stuck,
        running_receiver() as healthy,
        harness(
            webhook_timeout_seconds=60.0, webhook_endpoint_concurrency=2, dispatch_max_in_flight=4
        ) as h,
    ):
        await h.create_endpoint(stuck.url)
        _, secret = await h.create_endpoint(healthy.url)
        events = [factories.checkin_due_soon() for _ in range(20)]
        await h.publish(*events)
        received = await healthy.wait_for(len(events), timeout=30)
        stuck_in_flight = hanging
        release.set()
    assert stuck_in_flight == 2
    assert {r.headers["webhook-id"] for r in received} == {e.id for e in events}
    for request in received:
        Webhook(secret).verify(request.body, request.headers)


@SQLITE_ONLY
async def test_rate_limit_spaces_deliveries_to_one_endpoint(harness: HarnessFactory) -> None:
    async with running_receiver() as limited, running_receiver() as free, harness() as h:
        limited_id, _ = await h.create_endpoint(limited.url, rate_limit_per_second=4)
        free_id, _ = await h.create_endpoint(free.url)
        for endpoint_id in [limited_id] * 12 + [free_id] * 12:
            sent = await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)
            assert sent.status_code == 202, sent.text
        slow = await limited.wait_for(12)
        fast = await free.wait_for(12)
    # A bucket of 4 tokens refilled at 4/s: the last 8 need at least 2 s after the first 4.
    assert slow[-1].at - slow[0].at >= 1.5
    assert len(fast) == 12
