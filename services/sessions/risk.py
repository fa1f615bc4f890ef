"""The at-risk score of a goal: how likely the mentee is drifting away, 0 (fine) to 100.

Four signals, each with a fixed share of the score so a digest can explain a
ranking in one line:

* consecutive misses: 40 points at 3 or more misses in a row;
* silence: 25 points after 14 days without any check-in (counted from the
  schedule's start when there has been none yet);
* overdue milestones (pending, due date before today in the goal's zone):
  20 points at 2 or more;
* a falling self-rating: 15 points when the mean of the last three ratings
  is 2 points below the mean of the three before (the trend needs 4 ratings).

The level is ``low`` below 30, ``medium`` below 60, ``high`` from 60.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from statistics import fmean
from typing import Literal

from shared.events.catalog.goals import MilestoneSnapshot
from shared.events.catalog.sessions import Risk

MISSES_POINTS = 40.0
MISSES_FULL = 3
SILENCE_POINTS = 25.0
SILENCE_FULL_DAYS = 14.0
MILESTONE_POINTS = 20.0
MILESTONES_FULL = 2
TREND_POINTS = 15.0
TREND_FULL_DROP = 2.0
RATINGS_KEPT = 6


def overdue_milestones(
    milestones: Sequence[MilestoneSnapshot], today: date, now: datetime | None = None
) -> int:
    """Pending milestones past their due date (``overdue_at`` when goals gave it)."""
    count = 0
    for milestone in milestones:
        if milestone.status != "pending":
            continue
        if milestone.overdue_at is not None and now is not None:
            count += milestone.overdue_at <= now
        elif milestone.due_date is not None:
            count += milestone.due_date < today
    return count


def rating_trend(ratings: Sequence[int]) -> float:
    """Mean of the newest three ratings minus the mean of up to three before (oldest first)."""
    if len(ratings) < 4:
        return 0.0
    recent = ratings[-3:]
    earlier = ratings[-6:-3]
    return fmean(recent) - fmean(earlier)


def score(
    *,
    consecutive_misses: int,
    last_checkin_at: datetime | None,
    started_at: datetime | None,
    overdue: int,
    ratings: Sequence[int],
    now: datetime,
) -> Risk:
    since = last_checkin_at or started_at
    silent_days = max(0.0, (now - since).total_seconds() / 86_400) if since else 0.0
    trend = rating_trend(ratings)
    factors = {
        "consecutive_misses": round(
            MISSES_POINTS * min(consecutive_misses, MISSES_FULL) / MISSES_FULL, 1
        ),
        "silence": round(SILENCE_POINTS * min(silent_days / SILENCE_FULL_DAYS, 1.0), 1),
        "overdue_milestones": round(
            MILESTONE_POINTS * min(overdue, MILESTONES_FULL) / MILESTONES_FULL, 1
        ),
        "rating_trend": round(TREND_POINTS * min(max(0.0, -trend) / TREND_FULL_DROP, 1.0), 1),
    }
    total = min(100, round(sum(factors.values())))
    level: Literal["low", "medium", "high"] = (
        "low" if total < 30 else "medium" if total < 60 else "high"
    )
    return Risk(score=total, level=level, factors=factors)
