"""The at-risk score: each signal's share, the cap, the levels, and the rating trend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.sessions.risk import overdue_milestones, rating_trend, score
from shared.events.catalog.goals import MilestoneSnapshot

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def test_a_fresh_goal_is_low_risk() -> None:
    risk = score(
        consecutive_misses=0, last_checkin_at=NOW, started_at=NOW, overdue=0, ratings=[], now=NOW
    )
    assert (risk.score, risk.level) == (0, "low")
    assert set(risk.factors.values()) == {0.0}


def test_every_signal_at_its_maximum_gives_one_hundred() -> None:
    risk = score(
        consecutive_misses=5,
        last_checkin_at=NOW - timedelta(days=30),
        started_at=NOW - timedelta(days=60),
        overdue=4,
        ratings=[5, 5, 5, 2, 2, 2],
        now=NOW,
    )
    assert (risk.score, risk.level) == (100, "high")
    assert risk.factors == {
        "consecutive_misses": 40.0,
        "silence": 25.0,
        "overdue_milestones": 20.0,
        "rating_trend": 15.0,
    }


def test_partial_signals_add_up_and_set_the_level() -> None:
    risk = score(
        consecutive_misses=1,  # 40 * 1/3
        last_checkin_at=None,
        started_at=NOW - timedelta(days=7),  # 25 * 7/14
        overdue=1,  # 20 * 1/2
        ratings=[4, 4, 4, 3, 3, 3],  # drop of 1 point: 15 * 1/2
        now=NOW,
    )
    assert risk.factors == {
        "consecutive_misses": 13.3,
        "silence": 12.5,
        "overdue_milestones": 10.0,
        "rating_trend": 7.5,
    }
    assert (risk.score, risk.level) == (43, "medium")


def test_rating_trend_needs_four_ratings_and_rising_ratings_do_not_count() -> None:
    assert rating_trend([1, 5, 5]) == 0.0
    assert rating_trend([2, 2, 2, 5, 5, 5]) == 3.0
    rising = score(
        consecutive_misses=0,
        last_checkin_at=NOW,
        started_at=NOW,
        overdue=0,
        ratings=[1, 1, 1, 5, 5, 5],
        now=NOW,
    )
    assert rising.factors["rating_trend"] == 0.0


def test_overdue_milestones_use_overdue_at_when_given() -> None:
    milestones = [
        MilestoneSnapshot(milestone_id="a", title="a", due_date=date(2026, 3, 1)),
        MilestoneSnapshot(
            milestone_id="b", title="b", due_date=date(2026, 3, 9), overdue_at=NOW + timedelta(1)
        ),
        MilestoneSnapshot(
            milestone_id="c", title="c", due_date=date(2026, 3, 1), status="completed"
        ),
        MilestoneSnapshot(milestone_id="d", title="d"),
    ]
    assert overdue_milestones(milestones, date(2026, 3, 10), NOW) == 1
