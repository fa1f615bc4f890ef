"""How long sessions keeps what grows with traffic (see docs/privacy.md for every window)."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from services.sessions.models import (
    Checkin,
    CoachingSessionRow,
    GoalProjection,
    Occurrence,
    Timer,
)
from shared.events.catalog.goals import CLOSED_GOAL_STATUSES
from shared.retention.rules import DAY, RetentionRule


def _fired() -> ColumnElement[bool]:
    return Timer.__table__.c.fired_at.is_not(None)


def _resolved() -> ColumnElement[bool]:
    return Occurrence.__table__.c.status != "open"


def _finished_sessions() -> ColumnElement[bool]:
    return CoachingSessionRow.__table__.c.status != "scheduled"


def _closed_goals() -> ColumnElement[bool]:
    return GoalProjection.__table__.c.status.in_(CLOSED_GOAL_STATUSES)


def sessions_rules() -> list[RetentionRule]:
    timers = Timer.__table__
    occurrences = Occurrence.__table__
    checkins = Checkin.__table__
    coaching = CoachingSessionRow.__table__
    projections = GoalProjection.__table__
    return [
        RetentionRule(
            kind="closed_goals",
            table=projections,
            age=projections.c.updated_at,
            tenant=projections.c.tenant_id,
            default=730 * DAY,
            minimum=DAY,
            only=_closed_goals,
            why="The projection of a goal completed or abandoned longer than this goes, as goals "
            "deletes the goal (an event redelivered later than that would project it again; "
            "the broker keeps none that long).",
        ),
        RetentionRule(
            kind="checkins",
            table=checkins,
            age=checkins.c.recorded_at,
            tenant=checkins.c.tenant_id,
            default=730 * DAY,
            minimum=DAY,
            why="Check-ins (the mentee's notes, ratings, blockers) feed streaks and risk; two "
            "years covers a long programme and its review.",
        ),
        RetentionRule(
            kind="occurrences",
            table=occurrences,
            age=occurrences.c.due_at,
            tenant=occurrences.c.tenant_id,
            default=400 * DAY,
            minimum=7 * DAY,
            only=_resolved,
            why="Resolved check-in slots (completed or missed) explain adherence; a year and a "
            "month. Open ones are never purged: they are the schedule.",
        ),
        RetentionRule(
            kind="timers",
            table=timers,
            age=timers.c.fired_at,
            tenant=timers.c.tenant_id,
            default=30 * DAY,
            minimum=2 * DAY,
            only=_fired,
            why="A fired timer stays so that re-planning the same moment inserts nothing; "
            "re-planning only looks at the current and next occurrence, so two days is the "
            "floor and a month the default.",
        ),
        RetentionRule(
            kind="coaching_sessions",
            table=coaching,
            age=coaching.c.starts_at,
            tenant=coaching.c.tenant_id,
            default=730 * DAY,
            minimum=DAY,
            only=_finished_sessions,
            why="Held, missed or cancelled sessions, like check-ins: two years.",
        ),
    ]
