"""Load-generator HTTP clients: many small httpx clients instead of one big one.

A single shared ``httpx.AsyncClient`` degrades badly under many concurrent
requests (encode/httpx#3215: about 370 requests/s at 64 in flight on this
machine, against about 1,600 with several small clients), which would make
the generator, not the service, the bottleneck. Requests are spread over the
clients round-robin.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from types import TracebackType

import httpx


class ClientPool:
    def __init__(self, *, clients: int = 16, connections_per_client: int = 4) -> None:
        limits = httpx.Limits(
            max_connections=connections_per_client,
            max_keepalive_connections=connections_per_client,
        )
        timeout = httpx.Timeout(60.0, connect=10.0)
        self._clients = [
            httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)
            for _ in range(clients)
        ]
        self._cycle: Iterator[httpx.AsyncClient] = itertools.cycle(self._clients)

    def next(self) -> httpx.AsyncClient:
        return next(self._cycle)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
