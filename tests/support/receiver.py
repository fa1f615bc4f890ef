"""A real HTTP webhook receiver on loopback that records every request it gets.

Its behaviour is programmable per request (status, delay, headers), so tests
can make it fail, hang or recover while the service under test keeps sending.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from shared.devstack.processes import free_port
from shared.settings import ServiceSettings


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Responder = Callable[[Received], Reply | Awaitable[Reply]]


class Receiver:
    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[Received] = []
        self.responder: Responder = responder or (lambda _: Reply())
        self._arrived = asyncio.Condition()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender died mid-request (a kill -9): nothing was delivered
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        loop = asyncio.get_running_loop()
        item = Received(
            path=scope["path"],
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
            at=loop.time(),
        )
        reply = self.responder(item)
        if asyncio.iscoroutine(reply):
            reply = await reply
        assert isinstance(reply, Reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        async with self._arrived:
            self.requests.append(item)
            self._arrived.notify_all()
        headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, port: int | None = None) -> AsyncIterator[int]:
    """Serve an ASGI app with uvicorn on loopback in this event loop; yields the port."""
    chosen = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=chosen,
        log_config=None,
        lifespan="auto",
        # As a service process serves: past the idle expiry of the tests' own httpx pools.
        timeout_keep_alive=ServiceSettings.model_fields["http_keep_alive_seconds"].default,
    )
    async with serving(uvicorn.Server(config)):
        yield chosen


@contextlib.asynccontextmanager
async def serving(server: uvicorn.Server) -> AsyncIterator[uvicorn.Server]:
    """Run a prepared uvicorn server in this event loop until the block ends, then stop it."""
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def running_receiver(responder: Responder | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(responder)
    async with serve_asgi(receiver) as port:
        receiver.port = port
        yield receiver
