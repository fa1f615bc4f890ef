"""The ledger: every event a scenario publishes is accounted for.

At the cut-off each published key is exactly one of delivered, in flight (its
request had not been answered) or missing (accepted but never delivered);
deliveries of keys never published, or counted twice, make the ledger
unbalanced and the run void. Latency runs from the moment the generator was
*scheduled* to send, so a generator that falls behind cannot hide latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Ledger:
    scheduled_at: dict[str, float] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)
    delivered_at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    unknown: int = 0

    def publish(self, key: str, scheduled_at: float) -> None:
        self.scheduled_at[key] = scheduled_at

    def accept(self, key: str) -> None:
        self.accepted.add(key)

    def reject(self, key: str, reason: str) -> None:
        self.rejected[key] = reason

    def deliver(self, key: str, at: float) -> None:
        if key not in self.scheduled_at:
            self.unknown += 1
        elif key in self.delivered_at:
            self.duplicates += 1
        else:
            self.delivered_at[key] = at

    def latencies(self) -> list[float]:
        return [at - self.scheduled_at[key] for key, at in self.delivered_at.items()]

    def account(self) -> dict[str, int | bool]:
        published = len(self.scheduled_at)
        delivered = len(self.delivered_at)
        missing = len(self.accepted - self.delivered_at.keys())
        in_flight = len(
            self.scheduled_at.keys()
            - self.accepted
            - self.rejected.keys()
            - self.delivered_at.keys()
        )
        rejected = len(self.rejected)
        balanced = self.unknown == 0 and published == delivered + missing + in_flight + rejected
        return {
            "published": published,
            "delivered": delivered,
            "missing": missing,
            "in_flight": in_flight,
            "rejected": rejected,
            "duplicates": self.duplicates,
            "unknown": self.unknown,
            "balanced": balanced,
        }
