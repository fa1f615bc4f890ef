"""Talking to the three services over their public HTTP APIs, as any integrator would.

One small HTTP client per service (a single shared client degrades under
concurrency, encode/httpx#3215), the signed-in tenant's credential on every
call, and the console's correlation id passed along so the services' log
lines for a console page can be found together. Every way a call can go
wrong becomes an :class:`UpstreamError` that names the service and says what
happened; the pages turn it into an error page or an error panel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from shared.context import current
from shared.logs import get_logger

log = get_logger(__name__)

Service = Literal["goals", "sessions", "notifications"]
SERVICES: tuple[Service, ...] = ("goals", "sessions", "notifications")
ModelT = TypeVar("ModelT", bound=BaseModel)
Params = Mapping[str, str | int | None]

Kind = Literal[
    "unavailable",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "invalid",
    "rate_limited",
    "failed",
]


class UpstreamError(Exception):
    """A service call that did not give the console what it asked for."""

    def __init__(
        self,
        service: str,
        kind: Kind,
        detail: str,
        *,
        status: int | None = None,
        field_errors: list[dict[str, str]] | None = None,
        request_id: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.service = service
        self.kind = kind
        self.detail = detail
        self.status = status
        self.field_errors = field_errors or []
        self.request_id = request_id
        self.retry_after = retry_after


_KINDS: dict[int, Kind] = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "not_found",
    422: "invalid",
    400: "invalid",
    429: "rate_limited",
}


class Upstream:
    """The three services' clients; ``call`` sends one request with a tenant's credential."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = dict(urls)
        self._clients = {
            name: httpx.AsyncClient(
                base_url=url,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                transport=transport,
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": "followthrough-console"},
            )
            for name, url in self.urls.items()
        }

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        credential: str,
        *,
        params: Params | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The decoded JSON answer of a 2xx, else :class:`UpstreamError`."""
        headers = {"Authorization": f"Bearer {credential}"}
        correlation_id = current("correlation_id")
        if correlation_id:
            headers["X-Correlation-ID"] = correlation_id
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        try:
            response = await self._clients[service].request(
                method, path, params=query, json=json, headers=headers
            )
        except httpx.TimeoutException:
            log.warning("console.upstream.timeout", service=service, path=path)
            raise UpstreamError(
                service, "unavailable", f"{service} did not answer in time"
            ) from None
        except httpx.HTTPError as error:
            log.warning("console.upstream.unreachable", service=service, error=type(error).__name__)
            raise UpstreamError(
                service,
                "unavailable",
                f"{service} is not answering at {self.urls[service]} ({_reason(error)})",
            ) from None
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise UpstreamError(
                    service, "failed", f"{service} answered something that is not JSON"
                ) from None
        raise _error_of(service, response)

    async def model(
        self,
        model: type[ModelT],
        service: Service,
        method: str,
        path: str,
        credential: str,
        **kwargs: Any,
    ) -> ModelT:
        """Like :meth:`call`, parsed into ``model`` (a contract change is a clear error)."""
        body = await self.call(service, method, path, credential, **kwargs)
        try:
            return model.model_validate(body)
        except ValidationError as error:
            log.error("console.upstream.unexpected_answer", service=service, path=path)
            raise UpstreamError(
                service,
                "failed",
                f"{service} answered {path} in a shape the console does not know "
                f"({error.error_count()} fields differ)",
            ) from None


def _reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return "connection refused or host unreachable"
    return type(error).__name__


def _error_of(service: str, response: httpx.Response) -> UpstreamError:
    status = response.status_code
    problem: dict[str, Any] = {}
    if response.headers.get("content-type", "").startswith(
        ("application/problem+json", "application/json")
    ):
        try:
            body = response.json()
            problem = body if isinstance(body, dict) else {}
        except ValueError:
            problem = {}
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    errors = [
        {"field": str(item.get("field", "")), "message": str(item.get("message", ""))}
        for item in problem.get("errors") or []
        if isinstance(item, dict)
    ]
    kind: Kind = _KINDS.get(status, "unavailable" if status in (502, 503, 504) else "failed")
    log.info("console.upstream.refused", service=service, status=status, kind=kind)
    return UpstreamError(
        service,
        kind,
        detail,
        status=status,
        field_errors=errors,
        request_id=str(problem["request_id"]) if problem.get("request_id") else None,
        retry_after=response.headers.get("retry-after"),
    )
