"""How long notifications keeps what grows with traffic (see docs/privacy.md for every window)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from services.notifications.models import (
    Attempt,
    Delivery,
    DigestEntry,
    ErasedMessage,
    GoalQuietHours,
    Message,
)
from services.notifications.repository import PENDING
from shared.events.catalog.goals import CLOSED_GOAL_STATUSES
from shared.retention.rules import DAY, RetentionRule


def _settled_messages() -> ColumnElement[bool]:
    open_deliveries = select(Delivery.message_id).where(Delivery.status == PENDING)
    return Message.__table__.c.id.not_in(open_deliveries)


def _closed_goals() -> ColumnElement[bool]:
    return GoalQuietHours.__table__.c.status.in_(CLOSED_GOAL_STATUSES)


def _digested() -> ColumnElement[bool]:
    return DigestEntry.__table__.c.digest_id.is_not(None)


def notifications_rules() -> list[RetentionRule]:
    messages = Message.__table__
    attempts = Attempt.__table__
    digests = DigestEntry.__table__
    erased = ErasedMessage.__table__
    quiet_hours = GoalQuietHours.__table__
    return [
        RetentionRule(
            kind="messages",
            table=messages,
            age=messages.c.created_at,
            tenant=messages.c.tenant_id,
            default=30 * DAY,
            minimum=DAY,
            only=_settled_messages,
            why="A message (the event's body) with its deliveries and attempts is kept for "
            "replay and support; a month, like the usual webhook providers. Its deliveries "
            "and attempts go with it; one still being delivered is never purged.",
        ),
        RetentionRule(
            kind="attempts",
            table=attempts,
            age=attempts.c.started_at,
            default=30 * DAY,
            minimum=DAY,
            why="Each try with its status and response excerpt; no longer than its message.",
        ),
        RetentionRule(
            kind="digest_entries",
            table=digests,
            age=digests.c.created_at,
            tenant=digests.c.tenant_id,
            default=30 * DAY,
            minimum=DAY,
            only=_digested,
            why="Entries already rolled into a sent digest; pending ones wait for their digest.",
        ),
        RetentionRule(
            kind="closed_goals",
            table=quiet_hours,
            age=quiet_hours.c.updated_at,
            tenant=quiet_hours.c.tenant_id,
            default=730 * DAY,
            minimum=DAY,
            only=_closed_goals,
            why="The quiet hours of a goal completed or abandoned longer than this go, as goals "
            "deletes the goal and sessions its projection (the window is theirs).",
        ),
        RetentionRule(
            kind="erased_messages",
            table=erased,
            age=erased.c.erased_at,
            tenant=erased.c.tenant_id,
            default=30 * DAY,
            minimum=DAY,
            why="Marks a stored message an erasure rewrote (never replayed); no longer than "
            "the messages themselves.",
        ),
    ]
