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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    CursorResult,
    Executable,
    Insert,
    Table,
    Update,
    bindparam,
    insert,
    inspect,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

T = TypeVar("T")
Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


async def execute(
    session: AsyncSession, statement: Executable, parameters: Parameters = None
) -> CursorResult[Any]:
    """Run ``statement`` on the connection of ``session``'s transaction.

    A list of parameter dicts is an executemany (one prepared statement, every
    row bound), as with ``Connection.execute``.
    """
    await _flush_pending(session)
    return await (await connection_of(session)).execute(statement, parameters)


async def run_on_connection(session: AsyncSession, work: Callable[[Connection], T]) -> T:
    """Run synchronous Core ``work`` on the connection of ``session``'s transaction.

    For statements written once as a synchronous function, for the hot paths
    that run a whole transaction with ``Database.run_core``, and reached from a
    session's transaction here (one greenlet entry for all of ``work``).
    """
    await _flush_pending(session)
    return await (await connection_of(session)).run_sync(work)


async def _flush_pending(session: AsyncSession) -> None:
    """Flush pending ORM changes first, as Session.execute's autoflush would have done."""
    if session.new or session.dirty or session.deleted:
        await session.flush()


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
    for statement, rows in _inserts_of(objects):
        await execute(session, statement, rows)
    for obj in objects:
        make_transient_to_detached(obj)
    session.add_all(objects)


def insert_rows_of(connection: Connection, objects: Sequence[Any]) -> None:
    """INSERT new ORM objects as :func:`insert_new` does, on a plain connection, unattached.

    For a transaction run as one synchronous function (``Database.run_core``)
    that ends with the write: there is no session to attach them to, and
    nothing later in the transaction changes them.
    """
    for statement, rows in _inserts_of(objects):
        connection.execute(statement, rows)


def _inserts_of(objects: Sequence[Any]) -> list[tuple[Insert, list[dict[str, Any]]]]:
    """One INSERT per table with the rows of ``objects``, in the order their tables first appear."""
    by_table: dict[Table, list[Any]] = {}
    for obj in objects:
        by_table.setdefault(obj.__table__, []).append(obj)
    return [
        (_insert_into(table), [_row_of(obj, table) for obj in rows])
        for table, rows in by_table.items()
    ]


def _row_of(obj: Any, table: Table) -> dict[str, Any]:
    """Every column of ``table`` from the object's attribute (no column default applies)."""
    return {column.key: getattr(obj, column.key) for column in table.columns}


@functools.cache
def _insert_into(table: Table) -> Insert:
    """The INSERT of a table, built once (its compiled form is then cached by SQLAlchemy)."""
    return insert(table)


async def write_and_detach(session: AsyncSession, objects: Iterable[Any]) -> None:
    """Write new and changed ORM objects with Core statements, then detach them from ``session``.

    For a session that ends with its transaction and writes many rows of the
    same shape (the scheduler's pass), instead of the unit of work's flush:
    new objects go in one multi-row INSERT per table (every column from the
    object's attribute, as in :func:`insert_new`), changed ones in one
    executemany UPDATE of their changed columns per table and set of columns,
    keyed on the primary key. Detached, they are not written again; an object
    neither new nor changed stays as it is.
    """
    inserts: dict[Table, list[dict[str, Any]]] = {}
    updates: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    written: list[Any] = []
    for obj in objects:
        state = inspect(obj)
        table: Table = obj.__table__
        if state.pending:
            inserts.setdefault(table, []).append(_row_of(obj, table))
        elif state.persistent and state.committed_state:
            changed = tuple(sorted(state.committed_state))
            values = {key: state.dict[key] for key in changed}
            for column in table.primary_key.columns:
                values[_KEY_PREFIX + column.key] = getattr(obj, column.key)
            updates.setdefault((table, changed), []).append(values)
        else:
            continue
        written.append(obj)
    for obj in written:  # first, or the autoflush of execute() would write them too
        session.expunge(obj)
    for table, rows in inserts.items():
        await execute(session, _insert_into(table), rows)
    for (table, changed), rows in updates.items():
        await execute(session, _update_of(table, changed), rows)


_KEY_PREFIX = "key_"


@functools.cache
def _update_of(table: Table, columns: tuple[str, ...]) -> Update:
    """UPDATE of these columns of one row found by its primary key (bound as ``key_<name>``)."""
    statement = table.update().values({name: bindparam(name) for name in columns})
    for column in table.primary_key.columns:
        statement = statement.where(column == bindparam(_KEY_PREFIX + column.key))
    return statement
