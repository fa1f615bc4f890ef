"""What a kind of record is, for retention: its table, its age, what may go, and why the window.

Each service lists its rules (``services/<svc>/retention.py``); the platform
rules every service has are here. A window is the default unless the
deployment sets ``<SVC>_RETENTION_SECONDS`` for the kind or a tenant sets
its own (``PUT /v1/retention``); never below the rule's floor, which is
what keeps a guarantee (a dedupe id outlives the broker's retention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement

from shared.db.tables import dead_letters, outbox, processed_events

DAY = timedelta(days=1)


@dataclass(frozen=True)
class RetentionRule:
    kind: str
    table: Any
    """A Table (an ORM model's ``__table__``)."""
    age: ColumnElement[Any]
    """Rows older (by this column) than the window go."""
    default: timedelta
    why: str
    tenant: ColumnElement[Any] | None = None
    """Without one the window is deployment-wide (no tenant may change it)."""
    minimum: timedelta = timedelta(seconds=1)
    only: Callable[[], ColumnElement[bool]] | None = None
    """Which rows may go at all (finished ones); None: any old enough."""

    @property
    def per_tenant(self) -> bool:
        return self.tenant is not None

    @property
    def keys(self) -> Sequence[ColumnElement[Any]]:
        return list(self.table.primary_key.columns)


def _published() -> ColumnElement[bool]:
    return outbox.c.sent_at.is_not(None)


def platform_rules(
    topic_retention: timedelta,
    outbox_retention: timedelta = 3 * DAY,
    outbox_replay: timedelta = DAY,
) -> list[RetentionRule]:
    """The rules of the tables every service has.

    Idempotency keys are purged after 24 hours by the runtime. The relay also
    deletes published outbox rows now and then; the purger does it in batches.
    """
    return [
        RetentionRule(
            kind="outbox",
            table=outbox,
            age=outbox.c.sent_at,
            default=outbox_retention,
            minimum=outbox_replay,
            only=_published,
            why="Published events are kept to be published again to a new broker cluster "
            "(OUTBOX_REPLAY_HOURS, the floor); the default is OUTBOX_RETENTION_HOURS. Unsent "
            "rows are never purged.",
        ),
        RetentionRule(
            kind="processed_events",
            table=processed_events,
            age=processed_events.c.processed_at,
            default=max(14 * DAY, topic_retention + DAY),
            minimum=topic_retention + DAY,
            why="Consumers drop redeliveries by event id; an id must outlive every copy of its "
            "event on the broker (the topics' retention.ms) and a relay's replay to a new "
            "cluster, so the window is at least the topic retention plus a day.",
        ),
        RetentionRule(
            kind="dead_letters",
            table=dead_letters,
            age=dead_letters.c.dead_lettered_at,
            tenant=dead_letters.c.tenant_id,
            default=30 * DAY,
            minimum=DAY,
            why="Kept for an operator to inspect and redrive; a month covers a holiday.",
        ),
    ]
