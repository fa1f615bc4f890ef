"""Per-target lanes: the isolation that keeps one bad endpoint from slowing the others.

Each webhook endpoint (and the SMTP relay) has its own lane with its own
concurrency limit and, where configured, its own rate limit (a token bucket).
The dispatcher only claims work for lanes with room, so a hanging endpoint
fills its own few slots and nothing else: the database query that claims due
deliveries skips saturated lanes entirely, and there is no shared pool of
workers or connections for a hanging endpoint to exhaust.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

EMAIL_LANE = "email"


@dataclass
class Lane:
    key: str
    concurrency: int
    rate_per_second: float | None = None
    in_flight: int = 0
    _tokens: float = 0.0
    _refilled_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)

    def configure(self, *, concurrency: int, rate_per_second: float | None) -> None:
        if rate_per_second != self.rate_per_second:
            self.rate_per_second = rate_per_second
            self._tokens = self._capacity()
            self._refilled_at = time.monotonic()
        self.concurrency = concurrency

    def _capacity(self) -> float:
        return max(1.0, self.rate_per_second or 1.0)

    def _refill(self) -> None:
        if self.rate_per_second is None:
            return
        now = time.monotonic()
        self._tokens = min(
            self._capacity(), self._tokens + (now - self._refilled_at) * self.rate_per_second
        )
        self._refilled_at = now

    def has_room(self) -> bool:
        if self.in_flight >= self.concurrency:
            return False
        self._refill()
        return self.rate_per_second is None or self._tokens >= 1.0

    def seconds_until_token(self) -> float:
        """How long until the rate limit lets the next attempt go (0 if it does now)."""
        if self.rate_per_second is None:
            return 0.0
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate_per_second)

    def take(self) -> None:
        self.in_flight += 1
        self.last_used = time.monotonic()
        if self.rate_per_second is not None:
            self._tokens -= 1.0

    def release(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)


class Lanes:
    def __init__(self, *, default_concurrency: int, email_concurrency: int) -> None:
        self._default_concurrency = default_concurrency
        self._lanes: dict[str, Lane] = {EMAIL_LANE: Lane(EMAIL_LANE, email_concurrency)}

    def get(self, key: str, *, rate_per_second: float | None = None) -> Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = Lane(key, self._default_concurrency)
            lane.configure(concurrency=self._default_concurrency, rate_per_second=rate_per_second)
            self._lanes[key] = lane
        elif key != EMAIL_LANE:
            lane.configure(concurrency=self._default_concurrency, rate_per_second=rate_per_second)
        return lane

    def has_room(self, key: str) -> bool:
        """Whether the lane (as configured) has room; a lane not seen yet has."""
        lane = self._lanes.get(key)
        return lane is None or lane.has_room()

    def release(self, key: str) -> None:
        lane = self._lanes.get(key)
        if lane is not None:
            lane.release()

    def saturated(self) -> list[str]:
        return [key for key, lane in self._lanes.items() if not lane.has_room()]

    def next_token_in(self) -> float | None:
        waits = [
            lane.seconds_until_token()
            for lane in self._lanes.values()
            if lane.in_flight < lane.concurrency and lane.rate_per_second is not None
        ]
        positive = [w for w in waits if w > 0]
        return min(positive) if positive else None

    @property
    def in_flight(self) -> int:
        return sum(lane.in_flight for lane in self._lanes.values())

    def forget_idle(self, idle_seconds: float = 600.0) -> None:
        """Drop lanes unused for a while, so thousands of endpoints do not pile up in memory."""
        cutoff = time.monotonic() - idle_seconds
        for key in [
            k
            for k, lane in self._lanes.items()
            if k != EMAIL_LANE and lane.in_flight == 0 and lane.last_used < cutoff
        ]:
            del self._lanes[key]
