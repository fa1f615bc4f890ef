"""Run a service app under uvicorn with our logging, as each service's ``__main__`` does."""

from __future__ import annotations

import importlib.util

import uvicorn
from fastapi import FastAPI

from shared import tracing
from shared.logs import configure_logging, get_logger
from shared.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
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
        server_header=False,
    )
    uvicorn.Server(config).run()


def configure_for(settings: ServiceSettings) -> None:
    """Tracing (when the OTEL_* environment asks for it), then logging, which reads it."""
    tracing.configure(settings.service_name)
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    if tracing.enabled:
        from shared.tracing.sdk import summary

        get_logger(__name__).info("tracing.enabled", **summary)
