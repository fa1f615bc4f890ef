"""Measuring that storage stays bounded: row counts per table and database size, per window.

Used by the retention soak (``bench/retention.py``) and its short reliability
test: both run the real stack with a retention window of seconds and take a
census of every SQLite database after each window. Tables that hold live state
(a goal, its participants, a projection) grow with the number of goals, not
with traffic, and are reported apart; every other table must stay flat.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import create_async_engine

SERVICES = ("goals", "sessions", "notifications")
LIVE_STATE = {"goals.erasures"}
"""One small row per erasure: not traffic, never purged by the soak."""
SHORT_WINDOWS = (
    "closed_goals",
    "goal_history",
    "ingested_events",
    "processed_events",
    "outbox",
    "dead_letters",
    "messages",
    "attempts",
    "digest_entries",
    "erased_messages",
    "timers",
)


def soak_environment(window_seconds: int, purge_seconds: float = 1.0) -> dict[str, str]:
    """The services' settings for a soak: every traffic kind kept ``window_seconds``."""
    return {
        "FOLLOWTHROUGH_RETENTION_FLOORS": "false",
        "FOLLOWTHROUGH_RETENTION_PURGE_SECONDS": str(purge_seconds),
        "FOLLOWTHROUGH_RETENTION_SECONDS": json.dumps(dict.fromkeys(SHORT_WINDOWS, window_seconds)),
        "FOLLOWTHROUGH_OUTBOX_REPLAY_HOURS": "0",
    }


@dataclass
class Census:
    rows: dict[str, int] = field(default_factory=dict)
    """"service.table" -> rows."""
    bytes: dict[str, int] = field(default_factory=dict)
    """service -> database file size (without its write-ahead log, reported apart)."""
    wal_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def traffic(self) -> dict[str, int]:
        return {name: count for name, count in self.rows.items() if name not in LIVE_STATE}


async def take_census(data_dir: Path) -> Census:
    census = Census()
    for service in SERVICES:
        path = data_dir / f"{service}.db"
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        try:
            async with engine.connect() as connection:
                metadata = MetaData()
                await connection.run_sync(metadata.reflect)
                for table in metadata.sorted_tables:
                    if table.name == "alembic_version":
                        continue
                    count = await connection.scalar(select(func.count()).select_from(table))
                    census.rows[f"{service}.{table.name}"] = int(count or 0)
        finally:
            await engine.dispose()
        census.bytes[service], census.wal_bytes[service] = await asyncio.to_thread(_sizes, path)
    return census


def _sizes(path: Path) -> tuple[int, int]:
    wal = Path(f"{path}-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def growth(first: Mapping[str, int], later: Mapping[str, int], *, floor: int = 50) -> float:
    """The largest ratio of a later count to the first window's (small tables: to ``floor``)."""
    ratios = [count / max(first.get(name, 0), floor) for name, count in later.items()]
    return round(max(ratios, default=0.0), 2)
