"""Latency summaries."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


def summary_ms(latencies_seconds: Sequence[float]) -> dict[str, float]:
    values = sorted(latencies_seconds)
    return {
        "count": float(len(values)),
        "p50_ms": round(percentile(values, 0.50) * 1000, 2),
        "p90_ms": round(percentile(values, 0.90) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
        "max_ms": round((values[-1] if values else 0.0) * 1000, 2),
    }
