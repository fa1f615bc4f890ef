"""SQLite without a thread hop per call: aiosqlite's interface, answered on the event loop.

aiosqlite runs every call (open a cursor, execute, fetch, close, commit) on a
worker thread and wakes the loop for each answer. Through SQLAlchemy that is
four hops per statement, and profiles of the services put about 0.7 ms of CPU
on each statement (a ``POST /v1/goals`` of seven statements cost 6.5 ms, of
which the domain work is a small part). SQLite itself answers an indexed
statement in microseconds from its page cache, and a WAL commit with
``synchronous=NORMAL`` does not sync, so this driver calls it directly.

The one thing that can make SQLite block is a lock held by another
connection (``SQLITE_BUSY``). Connections therefore run with a busy timeout
of zero, and a statement that finds the database busy is retried on a worker
thread with the real, patient timeout: the loop never sleeps in SQLite's busy
handler, and another connection in this very loop can still finish and free
the lock. In a service process writers are already queued in-process (see
``Database``), so that slow path is for other processes on the same file.

What stays synchronous is the statement itself: a statement that scans a
large table blocks the loop for its duration, as it would hold the write lock
anyway. Queries are indexed by design (see the repositories).

It is plugged into SQLAlchemy's own aiosqlite dialect as its DBAPI module
(``dbapi()``), so SQL compilation, types and pooling are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

T = TypeVar("T")

__version__ = "1.0"

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


class _Thread:
    """SQLAlchemy marks aiosqlite's worker thread as a daemon; there is none here."""

    daemon = True


class Cursor:
    """aiosqlite's cursor interface over a plain ``sqlite3.Cursor``."""

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self.__aenter__().__await__()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        await self._connection._call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        rows = list(parameters)  # a generator would be used up by a first, busy attempt
        await self._connection._call(self._cursor.executemany, sql, rows)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Immediate:
    """Stands in for aiosqlite's work queue, which SQLAlchemy uses to set isolation_level."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:
            if future is not None and not future.done():
                future.set_exception(error)
            return
        if future is not None and not future.done():
            future.set_result(result)


class Connection:
    """aiosqlite's connection interface; every call runs at once on the caller's thread."""

    def __init__(self, connection: sqlite3.Connection, patient_timeout: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._patient_ms = int(patient_timeout * 1000)
        self._tx = _Immediate()
        self._thread = _Thread()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._conn.isolation_level = value

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def total_changes(self) -> int:
        return self._conn.total_changes

    def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        cursor = self.cursor()
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        await self._call(self._conn.commit)

    async def rollback(self) -> None:
        await self._call(self._conn.rollback)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run now; only if the database is busy, wait for it on a worker thread."""
        try:
            return function(*args)
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or self._patient_ms <= 0:
                raise
        return await asyncio.to_thread(self._patiently, function, *args)

    def _patiently(self, function: Callable[..., T], *args: Any) -> T:
        connection = self._conn
        connection.execute(f"PRAGMA busy_timeout={self._patient_ms}")
        try:
            return function(*args)
        finally:
            connection.execute("PRAGMA busy_timeout=0")


class _Connecting:
    """What ``connect`` returns: awaitable, with the ``_thread`` SQLAlchemy sets as daemon."""

    _thread = _Thread()

    def __init__(self, database: str, kwargs: dict[str, Any]) -> None:
        self._database = database
        self._kwargs = kwargs

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def _open(self) -> Connection:
        kwargs = dict(self._kwargs)
        patient = float(kwargs.pop("timeout", 5.0))
        kwargs.pop("iter_chunk_size", None)
        kwargs["check_same_thread"] = False  # the busy path finishes on a worker thread
        connection = sqlite3.connect(self._database, timeout=0, **kwargs)
        connection.execute("PRAGMA busy_timeout=0")
        return Connection(connection, patient)


def connect(database: str, **kwargs: Any) -> _Connecting:
    return _Connecting(database, kwargs)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """This module as the DBAPI of SQLAlchemy's aiosqlite dialect (``module=`` of the engine)."""
    import sys

    return AsyncAdapt_aiosqlite_dbapi(sys.modules[__name__], sqlite3)


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
