"""Idempotent consumption: remember each handled event id in the handler's own transaction.

Because the mark commits or rolls back with the handler's work, a redelivered
event is recognised exactly when its effects are already durable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import core
from shared.db.tables import processed_events
from shared.events.envelope import utc_now


async def first_delivery(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Mark ``event_id`` handled by ``consumer``; False when it already was."""
    values = {"consumer": consumer, "event_id": event_id, "processed_at": utc_now()}
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    statement = (
        postgresql.insert(processed_events)
        if dialect == "postgresql"
        else sqlite.insert(processed_events)
    )
    result = await session.execute(statement.values(values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


async def first_deliveries(
    session: AsyncSession, consumer: str, event_ids: Sequence[str]
) -> set[str]:
    """Mark a batch of event ids handled by ``consumer`` in one statement; returns the new ones."""
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    now = utc_now()
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    rows = await core.execute(
        session,
        _MARK_HANDLED[dialect],
        [{"consumer": consumer, "event_id": event_id, "processed_at": now} for event_id in unique],
    )
    return {str(row[0]) for row in rows.all()}


def _mark_handled(insert: Any) -> Any:
    """INSERT .. ON CONFLICT DO NOTHING RETURNING the ids that were new.

    Executed with a list of rows, SQLAlchemy sends it as one multi-row INSERT
    ("insertmanyvalues"), so one compiled statement serves every batch size.
    """
    return insert(processed_events).on_conflict_do_nothing().returning(processed_events.c.event_id)


_MARK_HANDLED = {
    "postgresql": _mark_handled(postgresql.insert),
    "sqlite": _mark_handled(sqlite.insert),
}
