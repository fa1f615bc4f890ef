"""A service's database, migrated, for tests that talk to a repository directly."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import MetaData

from shared.db.database import Database
from shared.db.migrations import upgrade


@contextlib.asynccontextmanager
async def migrated_database(
    url: str, migrations: Path, metadata: MetaData
) -> AsyncIterator[Database]:
    """``url``'s database with ``migrations`` applied (a SQLite file's folder made first),
    disposed of afterwards."""
    database = Database(url)
    if database.is_sqlite:
        Path(database.url.split("///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    try:
        await upgrade(database, migrations, metadata)
        yield database
    finally:
        await database.dispose()
