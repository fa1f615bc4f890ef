"""Deliveries by outcome per hour as a stacked bar chart, drawn on the server as SVG.

Only geometry is computed here; the template writes the SVG elements and the
stylesheet colours them by status class, so the page needs no script, no
chart library and no inline style (the Content-Security-Policy allows none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.console.models import DeliveryOutcomes

WIDTH = 760
HEIGHT = 240
LEFT = 44
RIGHT = 8
TOP = 10
BOTTOM = 26
STATUS_ORDER = ("succeeded", "pending", "failed", "cancelled", "suppressed", "superseded")
"""Bottom to top; anything else the service reports is stacked after these."""


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    title: str
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: float
    bars: list[Bar]
    ticks: list[Tick]
    statuses: list[str]
    totals: dict[str, int]
    summary: str
    empty: bool
    x_labels: list[tuple[float, str]] = field(default_factory=list)


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def build_chart(outcomes: DeliveryOutcomes) -> Chart:
    statuses = [s for s in STATUS_ORDER if s in outcomes.statuses] + [
        s for s in outcomes.statuses if s not in STATUS_ORDER
    ]
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = float(TOP + plot_height)
    count = max(len(outcomes.buckets), 1)
    slot = plot_width / count
    peak = nice_ceiling(max((sum(b.counts.values()) for b in outcomes.buckets), default=0))
    scale = plot_height / peak
    bars: list[Bar] = []
    x_labels: list[tuple[float, str]] = []
    for index, bucket in enumerate(outcomes.buckets):
        x = LEFT + index * slot + slot * 0.125
        y = baseline
        segments: list[Segment] = []
        for status in statuses:
            value = bucket.counts.get(status, 0)
            if value <= 0:
                continue
            height = value * scale
            y -= height
            segments.append(Segment(status, value, round(y, 2), round(height, 2)))
        hour = f"{bucket.start:%H}:00"
        described = ", ".join(f"{s.count} {s.status}" for s in segments) or "nothing"
        bars.append(
            Bar(round(x, 2), round(slot * 0.75, 2), hour, f"{hour} UTC: {described}", segments)
        )
        if index % 6 == 0 or index == count - 1:
            x_labels.append((round(x + slot * 0.375, 2), hour))
    parts = (0.0, 0.5, 1.0) if peak >= 2 else (0.0, 1.0)
    ticks = [Tick(round(baseline - part * plot_height, 2), f"{peak * part:g}") for part in parts]
    totals = {status: outcomes.totals.get(status, 0) for status in statuses}
    total = sum(totals.values())
    summary = (
        f"{total} deliveries in the last {len(outcomes.buckets)} hours: "
        + ", ".join(f"{count} {status}" for status, count in totals.items())
        if total
        else f"No deliveries in the last {len(outcomes.buckets)} hours."
    )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        baseline=baseline,
        bars=bars,
        ticks=ticks,
        statuses=statuses,
        totals=totals,
        summary=summary,
        empty=total == 0,
        x_labels=x_labels,
    )
