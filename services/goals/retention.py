"""How long goals keeps what grows with traffic (see docs/privacy.md for every window)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from services.goals.models import Erasure, Goal, GoalEventRecord, IngestedEvent
from shared.events.catalog.goals import CLOSED_GOAL_STATUSES as CLOSED
from shared.retention.rules import DAY, RetentionRule


def _closed_goal_events() -> ColumnElement[bool]:
    # Events of a goal that is no longer open: closed, or deleted already (closed_goals).
    still_open = select(Goal.id).where(Goal.status.not_in(CLOSED))
    return GoalEventRecord.goal_id.not_in(still_open)


def _closed_goals() -> ColumnElement[bool]:
    return Goal.__table__.c.status.in_(CLOSED)


def _completed_erasures() -> ColumnElement[bool]:
    return Erasure.status == "completed"


def goals_rules() -> list[RetentionRule]:
    return [
        RetentionRule(
            kind="goal_history",
            table=GoalEventRecord.__table__,
            age=GoalEventRecord.__table__.c.time,
            tenant=GoalEventRecord.__table__.c.tenant_id,
            default=365 * DAY,
            minimum=DAY,
            only=_closed_goal_events,
            why="A goal's event history is kept as long as the goal is open; once it is "
            "completed or abandoned, events older than the window go (a year covers a "
            "yearly review of the goal).",
        ),
        RetentionRule(
            kind="closed_goals",
            table=Goal.__table__,
            age=Goal.__table__.c.updated_at,
            tenant=Goal.__table__.c.tenant_id,
            default=730 * DAY,
            minimum=DAY,
            only=_closed_goals,
            why="A goal completed or abandoned (and untouched since) longer than this is "
            "deleted with its milestones, participants and progress reports; two years, a "
            "year past its history. Open goals are never purged.",
        ),
        RetentionRule(
            kind="ingested_events",
            table=IngestedEvent.__table__,
            age=IngestedEvent.__table__.c.received_at,
            tenant=IngestedEvent.__table__.c.tenant_id,
            default=30 * DAY,
            minimum=DAY,
            why="An integrator's event id is remembered so a resend is a duplicate; integrators "
            "retry for hours, a month is far beyond any retry schedule.",
        ),
        RetentionRule(
            kind="erasures",
            table=Erasure.__table__,
            age=Erasure.__table__.c.requested_at,
            tenant=Erasure.__table__.c.tenant_id,
            default=3 * 365 * DAY,
            minimum=30 * DAY,
            only=_completed_erasures,
            why="A completed erasure is the proof an access or erasure request was answered "
            "(it holds only the person's keyed hash); three years, as auditors ask.",
        ),
    ]
