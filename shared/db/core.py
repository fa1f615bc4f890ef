"""Core statements on a session's connection: the hot paths' way to the database.

``AsyncSession.execute`` sends even a plain Core ``insert``/``select`` through
the ORM's execution path (bulk-insert planning, ORM compile state, autoflush
checks), which cost several times the statement itself: a multi-row
``insert(table)`` through the session took ~0.45 ms where the same
statement on the connection takes ~0.1 ms. Repositories run their per-event
statements through :func:`execute` instead; what the ORM would have done
first (flushing pending objects, so a query sees them and foreign keys find
their rows) is kept.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, Executable, Insert, Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


async def execute(
    session: AsyncSession, statement: Executable, parameters: Parameters = None
) -> CursorResult[Any]:
    """Run ``statement`` on the connection of ``session``'s transaction.

    A list of parameter dicts is an executemany (one prepared statement, every
    row bound), as with ``Connection.execute``.
    """
    if session.new or session.dirty or session.deleted:
        await session.flush()  # what Session.execute's autoflush would have done
    return await (await connection_of(session)).execute(statement, parameters)


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """The connection of ``session``'s current transaction, looked up once per transaction.

    ``AsyncSession.connection()`` costs a greenlet switch and the session's
    bind resolution on every call; the pair is kept in ``session.info`` with
    the transaction it belongs to, so a new transaction looks it up anew.
    """
    transaction = session.get_transaction()
    known = session.info.get(_CONNECTION)
    if known is not None and transaction is not None and known[0] is transaction:
        return known[1]  # type: ignore[no-any-return]
    connection = await session.connection()
    session.info[_CONNECTION] = (session.get_transaction(), connection)
    return connection


_CONNECTION = "followthrough.core.connection"


async def insert_new(session: AsyncSession, objects: Sequence[Any]) -> None:
    """INSERT new ORM objects with one multi-row Core statement per table, then attach them.

    The ORM's unit of work costs several times the INSERT for a handful of
    rows. Once written, the objects are made persistent in ``session`` (as if
    loaded), so a later change to one in the same transaction is still
    flushed, as an UPDATE. Every column is written from the object's
    attribute: a column default is not applied, so the caller sets them all.
    """
    by_table: dict[Table, list[Any]] = {}
    for obj in objects:
        by_table.setdefault(obj.__table__, []).append(obj)
    for table, rows in by_table.items():
        columns = [column.key for column in table.columns]
        await execute(
            session,
            _insert_into(table),
            [{key: getattr(obj, key) for key in columns} for obj in rows],
        )
    for obj in objects:
        make_transient_to_detached(obj)
    session.add_all(objects)


@functools.cache
def _insert_into(table: Table) -> Insert:
    """The INSERT of a table, built once (its compiled form is then cached by SQLAlchemy)."""
    return insert(table)
