"""Throwaway PostgreSQL databases for tests: one per service per test, dropped afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg

ADMIN_DSN = os.environ.get(
    "FOLLOWTHROUGH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop (callable from inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _execute(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=3)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def reachable() -> bool:
    try:
        _run(_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def create_database(label: str) -> tuple[str, str]:
    """Create a fresh database; returns (name, SQLAlchemy asyncpg URL)."""
    name = f"ft_test_{label}_{uuid.uuid4().hex[:10]}"
    _run(_execute(f'CREATE DATABASE "{name}"'))
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


def drop_database(name: str) -> None:
    _run(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
