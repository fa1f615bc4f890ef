"""Receivers behaving badly, all at once, next to one healthy receiver.

Eight endpoints misbehave (500s, a hang, connection refused, a reset, a body
trickled byte by byte, a 100 MB answer, a redirect loop, a 429 storm) while
a ninth is healthy. The healthy one gets every event while the hanging and
trickling attempts are still in flight, so nothing of theirs delays it; then
the retry schedule runs on the manual clock and each bad endpoint's
deliveries end in the state its behaviour calls for, with the attempts log
saying why. Receiver behaviour is not a database matter: SQLite only.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.devstack.processes import free_port
from tests.services.notifications import factories
from tests.services.notifications.conftest import HarnessFactory
from tests.services.notifications.delivery.test_slow_endpoints import (
    raw_server,
    read_request,
    reset,
)
from tests.support.receiver import Received, Reply, running_receiver
from tests.support.waiting import eventually

HUNDRED_MB = 100 * 1024 * 1024


async def reset_now(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


EVENTS = 3
FINAL = {"succeeded", "failed", "cancelled"}


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
async def test_each_bad_receiver_ends_in_its_state_and_delays_nobody(
    harness: HarnessFactory, db_backend: str
) -> None:
    stop_hanging, forever = asyncio.Event(), asyncio.Event()
    hanging: list[Received] = []
    streamed: list[int] = []
    trickling = 0

    async def hang(request: Received) -> Reply:
        if stop_hanging.is_set():  # later attempts fail fast
            return Reply(status=504)
        hanging.append(request)
        await forever.wait()  # until the test ends: the sender's deadline cuts it off
        return Reply()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal trickling
        await read_request(reader)
        trickling += 1
        if stop_hanging.is_set():  # later attempts: a reset, so they fail fast
            await reset_now(writer)
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
        while True:  # a byte every 100 ms: never idle long enough for a per-read timeout
            writer.write(b".")
            await writer.drain()
            await asyncio.sleep(0.1)

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(f"HTTP/1.1 200 OK\r\ncontent-length: {HUNDRED_MB}\r\n\r\n".encode())
        sent, chunk = 0, b"x" * (1024 * 1024)
        try:
            while sent < HUNDRED_MB:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        finally:
            streamed.append(sent)

    def redirect(request: Received) -> Reply:
        return Reply(status=302, headers={"location": request.path})

    refused_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    async with (
        running_receiver(lambda _: Reply(status=500, body=b"boom")) as failing,
        running_receiver(hang) as hanger,
        running_receiver(redirect) as looping,
        running_receiver(lambda _: Reply(status=429, headers={"retry-after": "1"})) as storm,
        running_receiver() as healthy,
        raw_server(reset) as resetting,
        raw_server(trickle) as trickler,
        raw_server(huge) as huge_url,
        harness(
            webhook_timeout_seconds=8.0,
            webhook_retry_schedule_seconds=[0.0, 30.0],
            webhook_retry_jitter=0.0,
        ) as h,
    ):
        urls = {
            "500": f"{failing.url}/hook",
            "hang": f"{hanger.url}/hook",
            "refused": refused_url,
            "reset": resetting,
            "trickle": trickler,
            "100MB": huge_url,
            "redirect loop": f"{looping.url}/loop",
            "429 storm": f"{storm.url}/hook",
            "healthy": f"{healthy.url}/hook",
        }
        endpoints = {name: (await h.create_endpoint(url))[0] for name, url in urls.items()}
        events = [factories.checkin_due_soon() for _ in range(EVENTS)]
        await h.publish(*events)

        # Isolation: the healthy endpoint has everything while the hanging and trickling
        # endpoints' attempts are still running (they end only at the 8 s deadline).
        await healthy.wait_for(EVENTS, timeout=30)
        for event in events:
            message = await h.message(event.id)
            assert message is not None
            slow = [
                d
                for d in message["deliveries"]
                if d["endpoint_id"] in (endpoints["hang"], endpoints["trickle"])
            ]
            assert all(not d["attempt_log"] for d in slow), slow
        await eventually(lambda: len(hanging) == EVENTS and trickling == EVENTS)
        stop_hanging.set()  # later attempts fail fast (504, reset)

        def webhooks(message: dict[str, Any]) -> list[dict[str, Any]]:
            return [d for d in message["deliveries"] if d["channel"] == "webhook"]

        def deliveries(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
            by_endpoint = {d["endpoint_id"]: d for d in webhooks(message)}
            return {name: by_endpoint[eid] for name, eid in endpoints.items()}

        final: list[dict[str, dict[str, Any]]] = []
        for event in events:
            message = await h.run_schedule(
                event.id,
                until=lambda m: (
                    len(webhooks(m)) == len(endpoints)
                    and all(d["status"] in FINAL for d in webhooks(m))
                ),
                timeout=90,
            )
            final.append(deliveries(message))

        await eventually(lambda: len(streamed) == EVENTS, what="the 100 MB server to stop")
        redirected = len(looping.requests)
        forever.set()

    for outcome in final:
        assert outcome["healthy"]["status"] == "succeeded"
        assert outcome["healthy"]["attempts"] == 1
        huge_attempt = outcome["100MB"]["attempt_log"][0]
        assert outcome["100MB"]["status"] == "succeeded"  # a 2xx; the body is read up to the cap
        assert len(huge_attempt["response_excerpt"]) <= 1024
        for name in ("500", "hang", "refused", "reset", "trickle", "redirect loop", "429 storm"):
            delivery = outcome[name]
            assert delivery["status"] == "failed", (name, delivery)
            assert delivery["attempts"] == 2, (name, delivery)
            assert delivery["next_attempt_at"] is None
        errors = {name: [a["error"] for a in outcome[name]["attempt_log"]] for name in outcome}
        codes = {name: [a["status_code"] for a in outcome[name]["attempt_log"]] for name in outcome}
        assert codes["500"] == [500, 500]
        assert errors["hang"] == ["timed out after 8 s", "HTTP 504"]
        assert errors["trickle"][0] == "timed out after 8 s"
        assert codes["trickle"] == [None, None]
        assert all(e and "Connect" in e for e in errors["refused"]), errors["refused"]
        assert all(e and c is None for e, c in zip(errors["reset"], codes["reset"], strict=True))
        assert codes["redirect loop"] == [302, 302]
        assert "redirects are not followed" in (errors["redirect loop"][0] or "")
        assert codes["429 storm"] == [429, 429]
        # Retry-After (1 s) replaced the schedule's 30 s before the second attempt.
        storm_times = [
            datetime.fromisoformat(a["started_at"]) for a in outcome["429 storm"]["attempt_log"]
        ]
        assert timedelta(seconds=1) <= storm_times[1] - storm_times[0] < timedelta(seconds=30)
    # A redirect is never followed: exactly one request per attempt.
    assert redirected == 2 * EVENTS
    # The 100 MB answer was cut off after the read cap, not downloaded.
    assert all(sent < HUNDRED_MB // 4 for sent in streamed), streamed
