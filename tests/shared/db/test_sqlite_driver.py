"""The inline SQLite driver under SQLAlchemy's asyncio layer: rows, errors, and a busy database.

Two ``Database`` objects on one file are two connections with write queues
of their own, so the second writer meets SQLite's lock itself, as a replica
in another process would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.db import core
from shared.db.database import Database

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False, unique=True),
)


@pytest.fixture
async def path(tmp_path: Path) -> Path:
    database_path = tmp_path / "driver.db"
    database = Database(f"sqlite+aiosqlite:///{database_path}")
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await database.dispose()
    return database_path


async def test_rows_returning_and_counts_come_back_through_core_and_the_orm_session(
    path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with database.transaction() as session:
            returned = await core.execute(
                session,
                insert(items).returning(items.c.name),
                [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            )
            assert sorted(returned.scalars()) == ["a", "b", "c"]
            changed = await core.execute(
                session, items.update().where(items.c.name != "a").values(name=items.c.name + "!")
            )
            assert changed.rowcount == 2
        async with database.reader() as session:
            names = (await session.execute(select(items.c.name).order_by(items.c.id))).scalars()
            assert list(names) == ["a", "b!", "c!"]
            # Rows survive SQLAlchemy closing the driver's cursor after the statement.
            result = await core.execute(session, select(items.c.id, items.c.name))
            assert result.keys() == ["id", "name"]
            assert result.fetchone() is not None
            assert len(result.fetchmany(5)) == 2
            assert result.fetchone() is None
        async with database.engine.connect() as connection:  # AsyncConnection.execute too
            assert (await connection.execute(text("SELECT count(*) FROM items"))).scalar() == 3
    finally:
        await database.dispose()


async def test_a_failed_statement_raises_sqlalchemys_error_and_rolls_back(path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{path}")

    async def insert_twice() -> None:
        async with database.transaction() as session:
            await core.execute(session, insert(items), [{"name": "x"}])
            await core.execute(session, insert(items), [{"name": "x"}])

    async def read_a_missing_table() -> None:
        async with database.reader() as session:
            await session.execute(text("SELECT * FROM missing"))

    try:
        with pytest.raises(IntegrityError):
            await insert_twice()
        with pytest.raises(OperationalError, match="no such table"):
            await read_a_missing_table()
        async with database.reader() as session:
            count = (await session.execute(text("SELECT count(*) FROM items"))).scalar()
        assert count == 0
    finally:
        await database.dispose()


async def test_a_busy_database_is_waited_for_off_the_loop(path: Path) -> None:
    """The second writer waits for the lock on a worker thread while the loop keeps running."""
    first = Database(f"sqlite+aiosqlite:///{path}")
    second = Database(f"sqlite+aiosqlite:///{path}")
    ticks = 0
    ticked = asyncio.Event()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1
            ticked.set()

    async def hold_the_lock() -> None:
        async with first.transaction() as session:
            await core.execute(session, insert(items), [{"name": "first"}])
            holding.set()
            await release.wait()

    async def write_behind_it() -> int:
        await holding.wait()
        async with second.transaction() as session:
            await core.execute(session, insert(items), [{"name": "second"}])
        return ticks

    ticking = asyncio.create_task(ticker())
    try:
        holder = asyncio.create_task(hold_the_lock())
        waiter = asyncio.create_task(write_behind_it())
        await holding.wait()
        ticks_before = ticks
        for _ in range(10):  # the loop runs while the second writer waits
            ticked.clear()
            await ticked.wait()
        assert not waiter.done()
        release.set()
        await holder
        ticks_at_write = await asyncio.wait_for(waiter, 10)
        assert ticks_at_write >= ticks_before + 10
        async with second.reader() as session:
            names = (await session.execute(select(items.c.name).order_by(items.c.id))).scalars()
            assert list(names) == ["first", "second"]
    finally:
        ticking.cancel()
        await first.dispose()
        await second.dispose()
