"""What the database layer costs per call on SQLite: a transaction, and a statement in one.

Every per-event path is a few transactions of a few prebuilt Core statements
(docs/performance.md counts them), so this is the floor under the services'
database work: ``Database.transaction()`` with one UPDATE by primary key,
the same with five, a read transaction with one select, and the writes and
the read again as one-greenlet transactions (``Database.run_core``), on a file
database configured as a service's is. Prints microseconds of process CPU
per call (the median of rounds), and per statement the difference between
one and five. Run it at two revisions to judge a change to the driver or
to ``shared.db``.

    python -m bench.db_calls
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import Connection, bindparam, select, update

from shared.db import core
from shared.db.database import Database
from shared.db.tables import outbox

ROUNDS = 12
CALLS = 300

_TOUCH = update(outbox).where(outbox.c.id == bindparam("row_id")).values(sent_at=None)
_PENDING = select(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True)))


async def per_call(call: Callable[[], Awaitable[None]]) -> float:
    """Median CPU microseconds of one call over ``ROUNDS`` rounds (after a warm-up round)."""
    samples = []
    for round_ in range(ROUNDS + 1):
        began = time.process_time()
        for _ in range(CALLS):
            await call()
        if round_:
            samples.append((time.process_time() - began) / CALLS * 1e6)
    return statistics.median(samples)


async def measure(directory: Path) -> dict[str, float]:
    database = Database(f"sqlite+aiosqlite:///{directory / 'calls.db'}")
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(outbox.metadata.create_all)

        async def write(statements: int) -> None:
            async with database.transaction() as session:
                for _ in range(statements):
                    await core.execute(session, _TOUCH, {"row_id": 1})

        async def read() -> None:
            async with database.reader() as session:
                (await session.execute(_PENDING, {"ids": [1, 2]})).all()

        def touch(connection: Connection, statements: int = 1) -> None:
            for _ in range(statements):
                connection.execute(_TOUCH, {"row_id": 1})

        def select_two(connection: Connection) -> None:
            connection.execute(_PENDING, {"ids": [1, 2]}).all()

        one = await per_call(lambda: write(1))
        five = await per_call(lambda: write(5))
        return {
            "write transaction, 1 statement": one,
            "write transaction, 5 statements": five,
            "per statement": (five - one) / 4,
            "read transaction, 1 select": await per_call(read),
            "run_core write, 1 statement": await per_call(
                lambda: database.run_core(touch, write=True)
            ),
            "run_core write, 5 statements": await per_call(
                lambda: database.run_core(functools.partial(touch, statements=5), write=True)
            ),
            "run_core read, 1 select": await per_call(
                lambda: database.run_core(select_two, write=False)
            ),
        }
    finally:
        await database.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ft-db-calls-") as directory:
        figures = asyncio.run(measure(Path(directory)))
    for name, value in figures.items():
        print(f"{name}: {value:.0f} us")


if __name__ == "__main__":
    main()
