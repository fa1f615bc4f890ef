"""Composition root of the console: builds its parts from settings and wires the pages.

The console has no database, no topics and no runtime of its own: three
small HTTP clients (one per service), the credential verifier, the cookie
sealer, the templates. ``transport`` lets a test route the upstream calls
elsewhere; nothing reads the environment or does I/O before the lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import (
    pages_auth,
    pages_endpoints,
    pages_failures,
    pages_goals,
    pages_home,
    pages_messages,
    pages_retention,
)
from services.console.errors import UnexpectedErrorPages, install_error_pages
from services.console.settings import ConsoleSettings
from services.console.signin import Revocations, Sealer
from services.console.upstream import Upstream
from services.console.web import Console, build_templates
from shared import tracing
from shared.auth.setup import build_verifier
from shared.http.middleware import BodyLimitMiddleware, RequestContextMiddleware
from shared.logs import get_logger

log = get_logger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_FORM_BYTES = 64 * 1024

PAGE_ROUTERS = tuple(
    module.router
    for module in (
        pages_auth,
        pages_home,
        pages_endpoints,
        pages_messages,
        pages_goals,
        pages_failures,
        pages_retention,
    )
)
"""Every page and form action (tests walk them to check each asks for sign-in)."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""No script at all, no inline style, forms only to ourselves, never framed."""


class SecurityHeaders:
    """Headers every answer carries; pages (tenant data) are never stored by a cache."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cache-control", b"public, max-age=3600" if cacheable else b"no-store"),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


class Health(BaseModel):
    status: str = "ok"
    service: str = "console"


def create_app(
    settings: ConsoleSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    upstream = Upstream(
        settings.upstream_urls(), timeout=settings.upstream_timeout_seconds, transport=transport
    )
    console = Console(
        settings=settings,
        upstream=upstream,
        verifier=build_verifier(settings),
        sealer=Sealer(settings.session_secret.get_secret_value()),
        revocations=Revocations(),
        templates=build_templates(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("service.started", port=settings.port, upstream=upstream.urls)
        try:
            yield
        finally:
            await upstream.close()
            log.info("service.stopped")

    app = FastAPI(
        title="Followthrough console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.console = console
    install_error_pages(app)
    app.add_middleware(UnexpectedErrorPages)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_FORM_BYTES)
    app.add_middleware(RequestContextMiddleware, service="console")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", _healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    if tracing.enabled:  # its calls to the services' APIs (httpx) continue the page's trace
        from shared.tracing.sdk import instrument_app

        instrument_app(app)
    return app


async def _healthz() -> Health:
    """Alive and ready are the same here: the console depends on nothing of its own."""
    return Health()


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
