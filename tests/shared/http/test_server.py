"""The service server tunes the garbage collector once its app has started, and serves."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared.devstack.processes import free_port
from shared.http.server import GC_THRESHOLDS, _TunedServer
from tests.support.waiting import eventually


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

    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    server = _TunedServer(config)
    gc.unfreeze()
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, what="the server started")
        assert frozen_during_startup == [0]  # the app's own startup ran before the freeze
        assert gc.get_freeze_count() > 10_000  # what the process held by then
        assert gc.get_threshold() == GC_THRESHOLDS
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"http://127.0.0.1:{port}/ping")
        assert answer.json() == {"pong": "yes"}
    finally:
        server.should_exit = True
        await serving
