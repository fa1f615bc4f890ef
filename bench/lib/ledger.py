"""The ledger: every event a scenario publishes is accounted for.

At the cut-off each published key is exactly one of delivered, in flight (its
request had not been answered), rejected (the service refused it) or missing
(accepted but not delivered in time). Deliveries of keys never published make
the ledger unbalanced and the run void; repeats (at-least-once delivery) are
counted, not hidden. Latency runs from the moment the generator was
*scheduled* to send, so a generator that falls behind cannot hide latency.

With fan-out, a key expects one delivery per target (``expected_per_key``,
targets told apart by the receiver path) and counts as delivered at its last.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ledger:
    expected_per_key: int = 1
    scheduled_at: dict[str, float] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    accepted_at: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    arrivals: dict[str, dict[str, float]] = field(default_factory=dict)
    duplicates: int = 0
    unknown: int = 0

    def publish(self, key: str, scheduled_at: float) -> None:
        self.scheduled_at[key] = scheduled_at

    def accept(self, key: str, at: float | None = None) -> None:
        self.accepted.add(key)
        if at is not None:
            self.accepted_at[key] = at

    def reject(self, key: str, reason: str) -> None:
        self.rejected[key] = reason

    def deliver(self, key: str, at: float, target: str = "") -> None:
        if key not in self.scheduled_at:
            self.unknown += 1
            return
        seen = self.arrivals.setdefault(key, {})
        if target in seen:
            self.duplicates += 1
            seen[target] = min(seen[target], at)
        else:
            seen[target] = at

    @property
    def delivered_at(self) -> dict[str, float]:
        """Keys with every expected delivery, at the moment of the last one."""
        return {
            key: max(seen.values())
            for key, seen in self.arrivals.items()
            if len(seen) >= self.expected_per_key
        }

    def latencies(self) -> list[float]:
        return [at - self.scheduled_at[key] for key, at in self.delivered_at.items()]

    def accept_latencies(self) -> list[float]:
        """From the scheduled moment to the service's answer (the publishing side alone)."""
        return [at - self.scheduled_at[key] for key, at in self.accepted_at.items()]

    def target_latencies(self) -> dict[str, list[float]]:
        """Per target (receiver path): every first arrival's latency from the schedule."""
        out: dict[str, list[float]] = {}
        for key, seen in self.arrivals.items():
            for target, at in seen.items():
                out.setdefault(target, []).append(at - self.scheduled_at[key])
        return out

    def account(self) -> dict[str, int | bool]:
        """Each published key in exactly one bucket; unbalanced if anything else arrived."""
        published = self.scheduled_at.keys()
        delivered = self.delivered_at.keys() & published
        waiting = published - delivered
        missing = waiting & self.accepted
        rejected = (waiting & self.rejected.keys()) - missing
        in_flight = waiting - missing - rejected
        balanced = self.unknown == 0 and len(published) == (
            len(delivered) + len(missing) + len(rejected) + len(in_flight)
        )
        return {
            "published": len(published),
            "delivered": len(delivered),
            "missing": len(missing),
            "in_flight": len(in_flight),
            "rejected": len(rejected),
            "duplicates": self.duplicates,
            "unknown": self.unknown,
            "balanced": balanced,
        }
