"""Idempotent consumption: remember each handled event id in the handler's own transaction.

Because the mark commits or rolls back with the handler's work, a redelivered
event is recognised exactly when its effects are already durable.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

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
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(processed_events)
        .values([{"consumer": consumer, "event_id": i, "processed_at": now} for i in unique])
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return {str(row[0]) for row in (await session.execute(statement)).all()}
