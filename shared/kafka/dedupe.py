"""Idempotent consumption: remember each handled event id in the handler's own transaction.

Because the mark commits or rolls back with the handler's work, a redelivered
event is recognised exactly when its effects are already durable.
"""

from __future__ import annotations

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
