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
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from services.notifications.signing import webhook_headers
from services.notifications.ssrf import BlockedAddressError, Guard, GuardedTransport

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
    def __init__(
        self,
        guard: Guard,
        *,
        timeout: float,
        connect_timeout: float,
        max_response_bytes: int,
        ca_file: str | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
        # No global connection cap: lanes bound concurrency per endpoint, and a
        # shared cap is exactly the slot a hanging endpoint would take from others.
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(guard, limits=limits, ca_file=ca_file),
            follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def send(
        self,
        *,
        url: str,
        secrets: list[str],
        msg_id: str,
        body: bytes,
        extra_headers: dict[str, str] | None = None,
    ) -> AttemptResult:
        # The signature timestamp is wall-clock time on purpose: receivers compare
        # it with their own clock, whatever clock schedules our retries.
        signed_at = datetime.now(UTC)
        headers = {**(extra_headers or {}), **webhook_headers(secrets, msg_id, signed_at, body)}
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "POST", url, content=body, headers=headers
                ) as response:
                    read = await self._read_capped(response)
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
        await self._client.aclose()
