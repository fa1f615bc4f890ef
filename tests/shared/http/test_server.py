"""The service server: collector tuned once its app has started, idle connections kept open."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared.devstack.processes import free_port
from shared.http.server import GC_THRESHOLDS, _TunedServer, server_for
from shared.settings import ServiceSettings
from tests.support.receiver import serving


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """This test process keeps its own collector settings afterwards."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_the_heap_is_frozen_after_startup_and_young_collections_are_rarer(
    collector_restored: None,
) -> None:
    frozen_during_startup: list[int] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        frozen_during_startup.append(gc.get_freeze_count())
        yield

    port = free_port()
    config = uvicorn.Config(
        ping_app(lifespan), host="127.0.0.1", port=port, lifespan="on", log_config=None
    )
    gc.unfreeze()
    async with serving(_TunedServer(config)):
        assert frozen_during_startup == [0]  # the app's own startup ran before the freeze
        assert gc.get_freeze_count() > 10_000  # what the process held by then
        assert gc.get_threshold() == GC_THRESHOLDS
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"http://127.0.0.1:{port}/ping")
        assert answer.json() == {"pong": "yes"}


def ping_app(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    return app


@asynccontextmanager
async def served(settings: ServiceSettings) -> AsyncIterator[int]:
    """The app under the server a service process runs with ``settings``; yields its port."""
    server = server_for(ping_app(), settings.model_copy(update={"port": free_port()}))
    async with serving(server):
        yield server.config.port


async def idle_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A keep-alive connection that has had one answer and now sits idle."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    await reader.readexactly(length)
    return reader, writer


async def test_an_idle_connection_outlives_the_idle_expiry_of_client_pools(
    collector_restored: None,
) -> None:
    """httpx drops a pooled connection after 5 s idle; uvicorn's own default was the same 5 s,
    so a request sent at that moment met the server's close (httpx.ReadError in CI). The
    server keeps it longer, so the client is the side that closes."""
    settings = ServiceSettings(_env_file=None, environment="test")
    pool_expiry = httpx.Limits().keepalive_expiry
    assert pool_expiry is not None
    assert settings.http_keep_alive_seconds > pool_expiry
    async with served(settings) as port:
        reader, writer = await idle_connection(port)
        with pytest.raises(TimeoutError):  # nothing comes: still open after the pool's expiry
            await asyncio.wait_for(reader.read(1), pool_expiry + 1)
        writer.write(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")  # and it still serves
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        writer.close()


async def test_the_server_closes_a_connection_idle_for_longer_than_its_setting(
    collector_restored: None,
) -> None:
    settings = ServiceSettings(_env_file=None, environment="test", http_keep_alive_seconds=1)
    async with served(settings) as port:
        reader, writer = await idle_connection(port)
        assert await asyncio.wait_for(reader.read(1), 10) == b""  # closed by the server
        writer.close()
