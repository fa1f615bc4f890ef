"""Per-tenant ingestion rate limits: a token bucket per tenant, answering 429 with Retry-After.

One integrator stuck in a retry loop, or a bulk import run at full speed,
must not take the write path (and the database behind it) from every other
tenant. Each tenant gets ``TENANT_RATE_LIMIT_PER_SECOND`` units a second (an
event in a batch, a goal written, a check-in recorded) and may save up
``TENANT_RATE_LIMIT_BURST_SECONDS`` of them for a burst; ``TENANT_RATE_LIMITS``
gives single tenants another rate. A request larger than the whole bucket (a
big batch under a small limit) waits for a full bucket and empties it, so it
is slowed, never refused forever.

The buckets live in this process's memory: with N replicas behind a load
balancer a tenant gets up to N times the rate. That is the documented
trade-off for needing no shared store on the hot path (docs/reliability.md).
"""

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shared.auth.tokens import Principal
from shared.http.problems import ProblemError
from shared.http.security import require
from shared.logs import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)
MAX_TRACKED_TENANTS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TenantRateLimiter:
    def __init__(
        self,
        *,
        rate_per_second: float | None,
        burst_seconds: float,
        per_tenant: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_second
        self._burst = burst_seconds
        self._per_tenant = dict(per_tenant or {})
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> "TenantRateLimiter":
        return cls(
            rate_per_second=settings.tenant_rate_limit_per_second,
            burst_seconds=settings.tenant_rate_limit_burst_seconds,
            per_tenant=settings.tenant_rate_limits,
        )

    def rate_for(self, tenant: str) -> float | None:
        return self._per_tenant.get(tenant, self._rate)

    def take(self, tenant: str, cost: float = 1.0) -> float:
        """Spend ``cost`` of the tenant's tokens: 0 when allowed, else seconds to wait."""
        rate = self.rate_for(tenant)
        if rate is None:
            return 0.0
        capacity = max(rate * self._burst, 1.0)
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[tenant] = _Bucket(capacity, now)
        tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        needed = min(cost, capacity)
        if tokens >= needed:
            bucket.tokens = tokens - needed
            return 0.0
        bucket.tokens = tokens
        return (needed - tokens) / rate

    def _forget_idle(self, now: float) -> None:
        """Keep memory bounded: drop the buckets that have refilled (they start full anyway)."""
        if len(self._buckets) < MAX_TRACKED_TENANTS:
            return
        for tenant, bucket in list(self._buckets.items()):
            rate = self.rate_for(tenant) or 0.0
            if bucket.tokens + (now - bucket.at) * rate >= max(rate * self._burst, 1.0):
                del self._buckets[tenant]


def charge(request: Request, tenant: str, cost: float = 1.0) -> None:
    """Spend the tenant's quota for this request or answer 429 with Retry-After."""
    limiter: TenantRateLimiter = request.app.state.rate_limiter
    wait = limiter.take(tenant, cost)
    if wait <= 0:
        return
    retry_after = max(1, math.ceil(wait))
    rate = limiter.rate_for(tenant)
    log.warning("http.rate_limited", tenant_id=tenant, cost=cost, retry_after=retry_after)
    raise ProblemError(
        429,
        f"this tenant may ingest {rate:g} a second; retry after {retry_after} s",
        slug="rate-limited",
        title="Too Many Requests",
        headers={"Retry-After": str(retry_after)},
        rate_per_second=rate,
    )


def rate_limited(*scopes: str, cost: float = 1.0) -> Callable[..., Awaitable[Principal]]:
    """Like :func:`require`, and charges the caller's tenant ``cost`` of its ingestion quota."""
    authenticate = require(*scopes)

    # No ``from __future__ import annotations`` in this module: FastAPI must see this
    # annotation as an object, since it names a local dependency.
    async def limited(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        charge(request, principal.tenant_id, cost)
        return principal

    return limited
