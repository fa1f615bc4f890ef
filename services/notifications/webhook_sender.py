"""One webhook attempt over HTTP: signed, bounded in time and in what it reads back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import httpx

from services.notifications.signing import webhook_headers

RESPONSE_EXCERPT_BYTES = 1024


@dataclass(frozen=True, slots=True)
class AttemptResult:
    succeeded: bool
    status_code: int | None
    latency_ms: float
    error: str | None
    excerpt: str | None


class WebhookSender:
    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
            trust_env=False,
        )

    async def send(
        self, *, url: str, secrets: list[str], msg_id: str, body: bytes, now: datetime
    ) -> AttemptResult:
        headers = webhook_headers(secrets, msg_id, now, body)
        started = time.perf_counter()
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                excerpt = b""
                async for chunk in response.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                        break
            latency = (time.perf_counter() - started) * 1000
            ok = 200 <= response.status_code < 300
            return AttemptResult(
                succeeded=ok,
                status_code=response.status_code,
                latency_ms=latency,
                error=None if ok else f"HTTP {response.status_code}",
                excerpt=excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace"),
            )
        except httpx.HTTPError as error:
            latency = (time.perf_counter() - started) * 1000
            return AttemptResult(
                False, None, latency, f"{type(error).__name__}: {error}"[:500], None
            )

    async def close(self) -> None:
        await self._client.aclose()
