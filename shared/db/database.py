"""One async SQLAlchemy engine per service, with SQLite made safe for concurrent writers.

SQLite defers taking the write lock until the first write, and a deferred
transaction that later wants to write can fail at once with "database is
locked" no matter the busy timeout. Write transactions therefore begin
IMMEDIATE (they queue politely on the busy timeout instead), read-only ones
stay deferred so they never block writers under WAL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 10_000


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
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=10)
            options["connect_args"] = {"timeout": 5, "command_timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _make_sqlite_transactional(self.engine)
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._write_sessions = async_sessionmaker(writer, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed when the block exits cleanly."""
        async with self._write_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; never takes SQLite's write lock."""
        async with self._read_sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        # Hand transaction control to SQLAlchemy (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
