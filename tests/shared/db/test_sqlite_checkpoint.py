"""The WAL checkpointer of the SQLite driver: it checkpoints off the loop and stops cleanly."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from shared.db.sqlite_inline import Checkpointer


def _wal_database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE item (value TEXT)")
    return connection


def _wal_frames_left(connection: sqlite3.Connection) -> tuple[int, int]:
    """(frames in the WAL, frames checkpointed) without copying anything (a PASSIVE probe)."""
    _, frames, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return frames, done


async def test_commits_are_checkpointed_within_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    writer = _wal_database(path)
    checkpointer = Checkpointer(str(path), interval=0.05)
    try:
        for n in range(200):
            writer.execute("INSERT INTO item VALUES (?)", (f"row {n}",))
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size > 0
        checkpointer.committed()
        async with asyncio.timeout(5):
            while True:
                # A reader's snapshot would hold frames back; none is open here.
                frames, done = _wal_frames_left(writer)
                if frames > 0 and frames == done:
                    break
                await asyncio.sleep(0.02)
    finally:
        await checkpointer.stop()
        writer.close()


async def test_stopping_while_a_checkpoint_runs_waits_for_it(tmp_path: Path) -> None:
    """Closing the connection under a running checkpoint crashed the interpreter."""
    path = tmp_path / "service.db"
    writer = _wal_database(path)
    try:
        for round_ in range(30):
            writer.executemany(
                "INSERT INTO item VALUES (?)", [(f"{round_}-{n}" * 20,) for n in range(300)]
            )
            checkpointer = Checkpointer(str(path), interval=0)
            checkpointer.committed()
            await asyncio.sleep(0.001 * (round_ % 5))  # stop at varying points of a run
            await checkpointer.stop()
            assert checkpointer._connection is None
    finally:
        writer.close()


async def test_a_removed_database_is_not_created_again(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    _wal_database(path).close()
    path.unlink()
    checkpointer = Checkpointer(str(path), interval=0.01)
    checkpointer.committed()
    try:
        await asyncio.sleep(0.1)  # several rounds: each fails and is retried
    finally:
        await checkpointer.stop()
    assert not path.exists()
