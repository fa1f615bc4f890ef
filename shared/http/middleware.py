"""Pure ASGI middleware: request context, access log and metrics, and a body size limit.

Pure ASGI rather than ``BaseHTTPMiddleware`` so the request runs in the same
task (contextvars bound here reach the handler and back) and no response is
buffered.
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.context import bound, new_id
from shared.http.problems import problem_response, unexpected_error_response
from shared.logs import get_logger

log = get_logger("shared.http.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text = value.decode("latin-1")
            return text if _SAFE_ID.match(text) else None
    return None


class RequestContextMiddleware:
    """Binds request and correlation ids, echoes them, logs one line and counts the request.

    ``X-Request-ID`` identifies this request; ``X-Correlation-ID`` (or, when
    absent, the request id) becomes the correlation id of every event the
    request causes. An exception nothing else handled is answered here as a
    problem document, so no stack trace ever reaches the client.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or new_id()
        correlation_id = _header(scope, b"x-correlation-id") or request_id
        started = time.perf_counter()
        status = 500
        response_started = False
        echo = [
            (b"x-request-id", request_id.encode()),
            (b"x-correlation-id", correlation_id.encode()),
        ]

        async def send_with_ids(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), *echo]
            await send(message)

        with bound(request_id=request_id, correlation_id=correlation_id):
            try:
                await self.app(scope, receive, send_with_ids)
            except Exception as error:
                if response_started:
                    raise
                response = unexpected_error_response(loggable_path(scope), error)
                await response(scope, receive, send_with_ids)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        metrics.HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
        metrics.HTTP_LATENCY.labels(self.service, method, template).observe(elapsed)
        if scope.get("path", "") in _QUIET_PATHS and status < 400:
            return
        log.info(
            "http.request",
            method=method,
            path=loggable_path(scope),
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )


def loggable_path(scope: Scope) -> str:
    """The request path, or its route template when the path carries a credential.

    A calendar feed URL is ``/v1/calendars/{token}.ics``: the token is the
    credential, so a route with a ``{token}`` parameter is logged by template.
    """
    template = getattr(scope.get("route"), "path", None) or ""
    if "{token}" in template:
        return str(template)
    path: str = scope.get("path", "")
    return path


class _BodyTooLarge(HTTPException):
    """The streamed body passed the limit (an HTTPException, so FastAPI answers it as a 413)."""


class BodyLimitMiddleware:
    """Refuses request bodies over the limit with 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPException from body reading; the
                    # problem handler turns it into a 413 document.
                    raise _BodyTooLarge(413, f"request body exceeds {self.max_bytes} bytes")
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _BodyTooLarge:
            # Read by something outside FastAPI's handlers (another middleware).
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            detail=f"request body exceeds {self.max_bytes} bytes",
            slug="payload-too-large",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)
