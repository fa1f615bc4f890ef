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

from shared.db.tables import dead_letters, processed_events

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


def platform_rules(topic_retention: timedelta) -> list[RetentionRule]:
    """The rules of the tables every service has.

    The outbox is purged by its relay (``OUTBOX_RETENTION_HOURS``), idempotency
    keys after 24 hours by the runtime; both are bounded already.
    """
    return [
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
