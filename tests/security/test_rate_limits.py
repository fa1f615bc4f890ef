"""Per-tenant ingestion rate limits: 429 problem+json with Retry-After, one tenant at a time.

The bucket's arithmetic is checked on a hand-driven clock; over HTTP, the
limiter of a served app gets such a clock too, so "later" costs no real time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from services.goals.settings import GoalsSettings
from services.sessions.settings import SessionsSettings
from shared.http.ratelimit import MAX_TRACKED_TENANTS, TenantRateLimiter
from tests.services.goals.fixtures import goal_body
from tests.support.stack import StackFactory


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Ticks()
    limiter = TenantRateLimiter(
        rate_per_second=2, burst_seconds=2, per_tenant={"big": 100}, clock=clock
    )
    assert [limiter.take("acme") for _ in range(4)] == [0.0] * 4
    assert limiter.take("acme") == 0.5  # one token short, two tokens a second
    assert limiter.take("globex") == 0.0  # another tenant has its own bucket
    clock.now += 0.5
    assert limiter.take("acme") == 0.0
    assert limiter.take("acme", cost=3) == 1.5
    clock.now += 10  # refills to the burst, never beyond
    assert limiter.take("acme", cost=4) == 0.0
    assert limiter.take("acme") > 0
    # A request bigger than the bucket waits for a full bucket and empties it.
    assert limiter.take("acme", cost=50) == 2.0
    clock.now += 2
    assert limiter.take("acme", cost=50) == 0.0
    assert limiter.take("big", cost=200) == 0.0  # its own rate: a bucket of 200
    unlimited = TenantRateLimiter(rate_per_second=None, burst_seconds=1, clock=clock)
    assert all(unlimited.take("acme", cost=10**6) == 0.0 for _ in range(3))


def test_idle_buckets_are_forgotten_so_memory_stays_bounded() -> None:
    clock = Ticks()
    limiter = TenantRateLimiter(rate_per_second=1, burst_seconds=1, clock=clock)
    for index in range(MAX_TRACKED_TENANTS + 50):
        limiter.take(f"t{index}")
        clock.now += 0.001
    assert len(limiter._buckets) <= MAX_TRACKED_TENANTS + 1
    limiter.take("t-last")
    assert limiter.take("t-last") > 0  # a recent, still empty bucket was kept


def _assert_limited(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == str(retry_after)
    problem = response.json()
    assert problem["type"].endswith("/rate-limited")
    assert problem["status"] == 429


async def test_goals_and_sessions_answer_429_per_tenant(
    stack: StackFactory, auth_headers: Callable[..., dict[str, str]]
) -> None:
    limits: dict[str, Any] = {
        "tenant_rate_limit_per_second": 2,
        "tenant_rate_limit_burst_seconds": 2,
        "tenant_rate_limits": {"bulk": 1000},
    }
    clock = Ticks()
    async with stack(goals=limits, sessions=limits) as running:
        for app in running.apps.values():
            settings = app.state.runtime.settings
            if isinstance(settings, GoalsSettings | SessionsSettings):
                app.state.rate_limiter = TenantRateLimiter.from_settings(settings)
                app.state.rate_limiter._clock = clock
        goals, sessions = running.urls["goals"], running.urls["sessions"]
        acme, globex = auth_headers("acme"), auth_headers("globex")
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(4):
                created = await http.post(f"{goals}/v1/goals", json=goal_body(), headers=acme)
                assert created.status_code == 201, created.text
            refused = await http.post(
                f"{goals}/v1/goals",
                json=goal_body(),
                headers={**acme, "Idempotency-Key": "k-1"},
            )
            _assert_limited(refused, retry_after=1)
            # Other tenants keep their own quota; reads are not limited.
            other = await http.post(f"{goals}/v1/goals", json=goal_body(), headers=globex)
            assert other.status_code == 201
            listed = await http.get(f"{goals}/v1/goals", headers=acme)
            assert listed.status_code == 200
            assert len(listed.json()["items"]) == 4  # the refused one wrote nothing

            # The 429 was not stored against the key: after Retry-After the retry runs.
            clock.now += 1
            retried = await http.post(
                f"{goals}/v1/goals",
                json=goal_body(),
                headers={**acme, "Idempotency-Key": "k-1"},
            )
            assert retried.status_code == 201, retried.text
            assert "idempotent-replayed" not in retried.headers

            # A batch costs one unit per event: three events need three tokens.
            clock.now += 1  # one token was left after the retry: now three
            batch = [
                {
                    "specversion": "1.0",
                    "id": f"evt-{index}",
                    "source": "/crm",
                    "type": "ingest.progress.reported",
                    "data": {"goal": {"external_ref": "nowhere"}, "percent": 10},
                }
                for index in range(4)
            ]
            too_big = await http.post(f"{goals}/v1/events", json=batch, headers=acme)
            _assert_limited(too_big, retry_after=1)
            fits = await http.post(f"{goals}/v1/events", json=batch[:3], headers=acme)
            assert fits.status_code == 200, fits.text

            # A tenant with its own, larger rate.
            bulk = auth_headers("bulk")
            many = [{**event, "id": f"bulk-{n}"} for n, event in enumerate(batch * 100)]
            assert (
                await http.post(f"{goals}/v1/events", json=many, headers=bulk)
            ).status_code == 200

            # Sessions limits check-ins the same way (the quota is spent before the lookup).
            statuses = [
                (
                    await http.post(
                        f"{sessions}/v1/checkins", json={"goal_id": "g-unknown"}, headers=acme
                    )
                ).status_code
                for _ in range(5)
            ]
            assert statuses == [404, 404, 404, 404, 429]
