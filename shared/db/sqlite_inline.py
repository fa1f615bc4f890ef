"""SQLite without a thread hop or a greenlet switch per call, under SQLAlchemy's asyncio layer.

aiosqlite runs every call (open a cursor, execute, fetch, close, commit) on a
worker thread and wakes the loop for each answer; through SQLAlchemy that was
four hops per statement, and profiles of the services put about 0.7 ms of CPU
on each statement. SQLite itself answers an indexed statement in microseconds
from its page cache, and a WAL commit with ``synchronous=NORMAL`` does not
sync, so this driver calls it directly.

The connection and cursor are what SQLAlchemy's asyncio adapter of a DBAPI
connection is, minus the awaits. SQLAlchemy runs each call of an
``AsyncConnection`` or ``AsyncSession`` in a greenlet (``greenlet_spawn``);
its adapter for an async driver then leaves that greenlet for the event loop
at each DBAPI call (open the cursor, execute under an ``asyncio.Lock``,
close), to await a coroutine each time. Here they answer at once, in the
greenlet SQLAlchemy already runs; one await is left a statement, of an
awaitable that is already over, because ``AsyncConnection.execute`` checks
that the driver awaited something. Old and new driver interleaved in one
process: 5 to 17% less CPU on a transaction of prebuilt statements
(docs/performance.md; ``python -m bench.db_calls`` for the figures alone).

The one thing that can make SQLite block is a lock held by another
connection (``SQLITE_BUSY``). Connections therefore run with a busy timeout
of zero, and a statement that finds the database busy is retried on a worker
thread with the real, patient timeout, awaited from the greenlet
(``await_``): the loop never sleeps in SQLite's busy handler, and another
connection in this very loop can still finish and free the lock. In a
service process writers are already queued in-process (see ``Database``), so
that slow path is for other processes on the same file.

What stays synchronous is the statement itself: a statement that scans a
large table blocks the loop for its duration, as it would hold the write lock
anyway. Queries are indexed by design (see the repositories).

It is plugged into SQLAlchemy's own aiosqlite dialect as its DBAPI module
(``dbapi()``), so SQL compilation, types and pooling are unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.util.concurrency import await_, in_greenlet

T = TypeVar("T")

__version__ = "2.0"

# The exception classes SQLAlchemy's dialect expects to find on the module.
DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(error).lower() or "busy" in str(error).lower()


class _Done(Awaitable[None]):
    """An awaitable that is already over: awaiting it returns ``None`` without suspending."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # makes this a generator that ends at once


_DONE = _Done()


class Cursor:
    """A DBAPI cursor as SQLAlchemy's asyncio adapter presents one: rows fetched at execute.

    SQLAlchemy's asyncio layer closes the driver's cursor right after each
    statement (``_async_soft_close``) and reads the rows afterwards, so they
    and the description are kept here, as its own adapter keeps them.
    """

    server_side = False
    __slots__ = ("_connection", "_cursor", "_rows", "description", "lastrowid", "rowcount")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = connection.sqlite.cursor()
        self._rows: collections.deque[Any] = collections.deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    @property
    def _open(self) -> sqlite3.Cursor:
        if self._cursor is None:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        return self._cursor

    def execute(
        self, operation: str, parameters: Sequence[Any] | dict[str, Any] | None = None
    ) -> None:
        cursor = self._open
        self._connection.call(cursor.execute, operation, () if parameters is None else parameters)
        self._settle(cursor)

    def executemany(self, operation: str, parameters: Iterable[Any]) -> None:
        cursor = self._open
        rows = list(parameters)  # a generator would be used up by a first, busy attempt
        self._connection.call(cursor.executemany, operation, rows)
        self._settle(cursor)

    def _settle(self, cursor: sqlite3.Cursor) -> None:
        if in_greenlet():
            # AsyncConnection.execute insists that the driver awaited something (its check
            # for a DBAPI that is not async at all): one await, over at once.
            await_(_DONE)
        self.description = cursor.description
        self._rows = collections.deque(cursor.fetchall() if cursor.description else ())
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        count = len(self._rows) if size is None else min(size, len(self._rows))
        return [self._rows.popleft() for _ in range(count)]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # rows are all fetched at execute

    def setinputsizes(self, *sizes: Any) -> None:
        pass

    def close(self) -> None:
        self._rows.clear()
        self._close_driver_cursor()

    async def _async_soft_close(self) -> None:
        """What SQLAlchemy's asyncio layer calls after a statement: rows and description stay."""
        self._close_driver_cursor()

    def _close_driver_cursor(self) -> None:
        if self._cursor is not None:
            cursor, self._cursor = self._cursor, None
            cursor.close()


class Connection(AdaptedConnection):
    """A DBAPI connection over ``sqlite3``; every call runs at once in the caller's greenlet."""

    __slots__ = ("_patient_ms", "dbapi")

    def __init__(self, dbapi: Any, connection: sqlite3.Connection, patient_timeout: float) -> None:
        self.dbapi = dbapi
        # The driver connection, as AdaptedConnection.driver_connection hands it out (None
        # once closed); typed there as an async driver's.
        self._connection: sqlite3.Connection | None = connection  # type: ignore[assignment]
        self._patient_ms = int(patient_timeout * 1000)

    @property
    def sqlite(self) -> sqlite3.Connection:
        if self._connection is None:
            raise OperationalError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self.sqlite.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self.sqlite.isolation_level = value

    @property
    def in_transaction(self) -> bool:
        return self.sqlite.in_transaction

    def cursor(self, server_side: bool = False) -> Cursor:
        """A cursor; ``server_side`` is accepted and ignored (rows are read at execute)."""
        return Cursor(self)

    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Cursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    def begin(self, mode: str) -> None:
        """``BEGIN <mode>`` on sqlite3 itself; a busy database is waited for as in ``call``."""
        self.call(self.sqlite.execute, f"BEGIN {mode}")

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.sqlite.create_function(*args, **kwargs)

    def commit(self) -> None:
        if self._connection is not None:
            self.call(self._connection.commit)

    def rollback(self) -> None:
        if self._connection is not None:
            self.call(self._connection.rollback)

    def close(self) -> None:
        self.stop()

    def terminate(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run now; only if the database is busy, wait for it on a worker thread."""
        try:
            return function(*args)
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or self._patient_ms <= 0:
                raise
        return await_(asyncio.to_thread(self._patiently, function, *args))

    def _patiently(self, function: Callable[..., T], *args: Any) -> T:
        connection = self.sqlite
        connection.execute(f"PRAGMA busy_timeout={self._patient_ms}")
        try:
            return function(*args)
        finally:
            connection.execute("PRAGMA busy_timeout=0")


class _Dbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI shim, connecting with this module's ``Connection``."""

    def connect(self, database: str, **kwargs: Any) -> Connection:  # type: ignore[override]
        patient = float(kwargs.pop("timeout", 5.0))
        kwargs.pop("iter_chunk_size", None)
        kwargs.pop("async_creator_fn", None)
        kwargs["check_same_thread"] = False  # the busy path finishes on a worker thread
        connection = sqlite3.connect(database, timeout=0, **kwargs)
        connection.execute("PRAGMA busy_timeout=0")
        return Connection(self, connection, patient)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """This module as the DBAPI of SQLAlchemy's aiosqlite dialect (``module=`` of the engine)."""
    import sys

    return _Dbapi(sys.modules[__name__], sqlite3)


CHECKPOINT_SECONDS = 1.0


class Checkpointer:
    """WAL checkpoints on a worker thread, so no commit on the loop ever pays for one.

    SQLite's automatic checkpoint runs inside the commit that crosses the WAL's
    size limit and syncs the database file: up to tens of milliseconds on the
    event loop. Service connections turn it off (``wal_autocheckpoint=0``) and
    this runs a PASSIVE checkpoint (it never waits for readers or writers) at
    most once a second after writes, on a connection of its own.
    """

    def __init__(self, path: str, interval: float = CHECKPOINT_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[None] | None = None
        self._connection: sqlite3.Connection | None = None

    def committed(self) -> None:
        """A write transaction committed: a checkpoint is due within the interval."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="sqlite-checkpointer"
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if not self._dirty:
                continue
            self._dirty = False
            # Shielded: cancelling this task must not orphan the thread still using the
            # connection; ``stop`` waits for it before closing (a close racing a running
            # statement crashes the interpreter).
            self._in_flight = asyncio.ensure_future(asyncio.to_thread(self._checkpoint))
            try:
                await asyncio.shield(self._in_flight)
            except sqlite3.Error:
                self._dirty = True  # busy or briefly unavailable: next round

    def _checkpoint(self) -> None:
        if self._connection is None:
            # mode=rw: a database removed meanwhile is not created again, empty.
            self._connection = sqlite3.connect(
                f"file:{quote(self._path)}?mode=rw",
                uri=True,
                timeout=1.0,
                check_same_thread=False,
                isolation_level=None,
            )
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
            self._task = None
        if self._in_flight is not None:
            with contextlib.suppress(Exception):
                await self._in_flight
            self._in_flight = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(sqlite3.Error):
                connection.close()
