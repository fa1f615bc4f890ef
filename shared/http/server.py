"""Run a service app under uvicorn with our logging, as each service's ``__main__`` does."""

from __future__ import annotations

import gc
import importlib.util
import socket

import uvicorn
from fastapi import FastAPI

from shared import tracing
from shared.logs import configure_logging, get_logger
from shared.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    server_for(app, settings).run()


def server_for(app: FastAPI, settings: ServiceSettings) -> uvicorn.Server:
    """The uvicorn server a service process runs, configured from its settings."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        server_header=False,
    )
    return _TunedServer(config) if settings.gc_tuning else uvicorn.Server(config)


GC_THRESHOLDS = (10_000, 10, 10)
"""Allocations between young collections (Python's default is 700), then the default ratios."""


class _TunedServer(uvicorn.Server):
    """A service process's garbage collector, set for a long-lived server's heap.

    Every young collection also ages what survives it, and each full one walks
    every object the process holds: the app, SQLAlchemy's mappers and compiled
    statements, pydantic's schemas, the clients. In a scheduler pass of 500
    misses that was a third of the CPU (``bench.scheduler_pass``). Once the
    app has started, what exists is frozen (moved where collections no longer
    look: it lives as long as the process anyway), and young collections run
    every 10,000 allocations instead of 700. Reference counting still frees
    almost everything at once; only cycles wait for a collection.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        tune_collector()


def tune_collector() -> None:
    """Freeze what the process holds now and collect young objects less often (see above)."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()
    gc.freeze()


def configure_for(settings: ServiceSettings) -> None:
    """Tracing (when the OTEL_* environment asks for it), then logging, which reads it."""
    tracing.configure(settings.service_name)
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    if tracing.enabled:
        from shared.tracing.sdk import summary

        get_logger(__name__).info("tracing.enabled", **summary)
