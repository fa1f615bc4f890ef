"""One async SQLAlchemy engine per service, with SQLite made safe for concurrent writers.

SQLite defers taking the write lock until the first write, and a deferred
transaction that later wants to write can fail at once with "database is
locked" no matter the busy timeout. Write transactions therefore begin
IMMEDIATE (they queue politely on the busy timeout instead), read-only ones
stay deferred so they never block writers under WAL.

SQLite has one writer at a time, and a pooled connection that finds the lock
taken falls into SQLite's busy handler, which sleeps 1 to 100 ms between
tries: under concurrent requests most of the time went to those sleeps
(single creates ran at ~85/s with a p99 of seconds). So write transactions of
one process queue on an ``asyncio.Lock`` first (FIFO, no sleeping) and reach
SQLite one at a time; the busy timeout is left for other processes on the
same file. A write transaction must therefore never wait, inside itself, on
another write transaction of the same process (none does: on SQLite that
always was a wait on the busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util.concurrency import greenlet_spawn

from shared import tracing
from shared.db import sqlite_inline

SQLITE_BUSY_TIMEOUT_MS = 10_000
T = TypeVar("T")


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached or is locked; the caller should retry later."""


_SQLITE_OUTAGE_MARKERS = (
    "locked",
    "unable to open",
    "disk i/o",
    "database or disk is full",
    "readonly database",
    "busy",
)


def _is_sqlite_error(error: OperationalError) -> bool:
    return type(error.orig).__module__.startswith("sqlite3")


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database is down or busy, not that the query is wrong."""
    if isinstance(error, DatabaseUnavailableError | PoolTimeoutError | ConnectionError):
        return True
    if isinstance(error, OperationalError) and _is_sqlite_error(error):
        # sqlite3 raises OperationalError for a missing table or bad SQL too:
        # only lock and file trouble is an outage worth waiting out.
        return any(marker in str(error.orig).lower() for marker in _SQLITE_OUTAGE_MARKERS)
    if isinstance(error, OperationalError | InterfaceError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OSError | asyncio.TimeoutError)


class Database:
    """Owns the engine and hands out sessions; built by the composition root, closed on stop."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            # Statements run on the loop; only a busy database is waited for, on a thread.
            options["module"] = sqlite_inline.dbapi()
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=10)
            options["connect_args"] = {"timeout": 5, "command_timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if tracing.enabled:
            from shared.tracing.sdk import instrument_engine

            instrument_engine(self.engine)
        if self.is_sqlite:
            _make_sqlite_transactional(self.engine)
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._writer = writer
        self._write_sessions = async_sessionmaker(writer, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock: asyncio.Lock | None = None
        self._write_lock_loop: asyncio.AbstractEventLoop | None = None
        self._checkpointer = (
            sqlite_inline.Checkpointer(self.engine.url.database)
            if self.is_sqlite and self.engine.url.database
            else None
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed when the block exits cleanly.

        Callbacks registered with :func:`on_commit` run after the commit succeeded.
        """
        async with self._write_slot(), self._write_sessions() as session:
            callbacks: list[Callable[[], None]] = []
            session.info[_ON_COMMIT] = callbacks
            async with session.begin():
                yield session
        if self._checkpointer is not None:
            self._checkpointer.committed()
        for callback in callbacks:
            callback()

    def _write_slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """On SQLite, this process's queue for the single write lock (one per event loop)."""
        if not self.is_sqlite:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        if self._write_lock is None or self._write_lock_loop is not loop:
            self._write_lock = asyncio.Lock()
            self._write_lock_loop = loop
        return self._write_lock

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; never takes SQLite's write lock."""
        async with self._read_sessions() as session, session.begin():
            yield session

    async def run_core(self, work: Callable[[Connection], T], *, write: bool) -> T:
        """Run ``work`` on a connection in one transaction, all of it in one greenlet.

        For the few hot paths of prebuilt Core statements and nothing else (the
        outbox relay's read and mark). ``transaction()`` and ``reader()`` enter
        SQLAlchemy's greenlet at every step (session begin, connection, each
        statement, commit, close); a whole transaction run as one synchronous
        function enters it once, which is what ``AsyncConnection.run_sync``
        does for one call. Measured on SQLite, interleaved in one process: a
        write transaction of one UPDATE 300 -> 130 us of CPU, a read of one
        select 335 -> 137 us. ``work`` runs inside the transaction and may not
        await; a write still queues on this process's SQLite write lock first.
        """
        result: T
        if not write:
            result = await greenlet_spawn(_in_transaction, self.engine.sync_engine, work)
            return result
        async with self._write_slot():
            result = await greenlet_spawn(_in_transaction, self._writer.sync_engine, work)
        if self._checkpointer is not None:
            self._checkpointer.committed()
        return result

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.stop()
        await self.engine.dispose()


_ON_COMMIT = "followthrough.on_commit"


def _in_transaction(engine: Any, work: Callable[[Connection], T]) -> T:
    """``work`` in a transaction of ``engine``, committed when it returns (inside the greenlet)."""
    with engine.begin() as connection:
        return work(connection)


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` once ``session``'s transaction has committed (never on rollback).

    Sessions from :meth:`Database.transaction` keep a plain list, run after the
    commit; registering a SQLAlchemy event listener per transaction cost more
    than the insert it followed. Any other session gets a one-off listener.
    """
    callbacks: list[Callable[[], None]] | None = session.info.get(_ON_COMMIT)
    if callbacks is not None:
        if callback not in callbacks:
            callbacks.append(callback)
        return
    sync_session = session.sync_session
    registered: set[Callable[[], None]] = sync_session.info.setdefault(_ON_COMMIT + ".once", set())
    if callback in registered:
        return
    registered.add(callback)

    def committed(_: Any) -> None:
        registered.discard(callback)
        callback()

    def rolled_back(_: Any) -> None:
        registered.discard(callback)

    event.listen(sync_session, "after_commit", committed, once=True)
    event.listen(sync_session, "after_rollback", rolled_back, once=True)


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        # Hand transaction control to SQLAlchemy (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run on a thread (sqlite_inline.Checkpointer), not in a commit on the loop.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Straight to the driver: through exec_driver_sql the BEGIN took SQLAlchemy's whole
        # execution path (cursor, events, result), a sixth of a one-statement transaction.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        driver: sqlite_inline.Connection = connection.connection.dbapi_connection
        try:
            driver.begin(mode)
        except sqlite3.Error as error:
            # As SQLAlchemy wraps a failed statement, so is_unavailable() can judge it.
            raise DBAPIError.instance(f"BEGIN {mode}", None, error, sqlite3.Error) from error
