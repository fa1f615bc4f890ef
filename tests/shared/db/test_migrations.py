"""Every service's migrations build exactly its ORM schema, and come down again cleanly.

Runs on SQLite and PostgreSQL (``db_backend``). For each service: upgrade an
empty database to head, compare the result with the ORM metadata the way
``alembic revision --autogenerate`` would (no difference allowed), downgrade
to base (nothing may be left but Alembic's own table), and upgrade once more
so a downgrade that leaves debris behind (a type, an index) shows up too.
A failure here means a model changed without a migration, or the other way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

import services
from services.goals.models import Base as GoalsBase
from services.notifications.models import Base as NotificationsBase
from services.sessions.models import Base as SessionsBase
from shared.db.database import Database
from shared.db.migrations import downgrade, upgrade
from shared.db.tables import platform_metadata


@dataclass(frozen=True)
class ServiceSchema:
    name: str
    metadata: MetaData
    migrations: Path


def versions_of(service: str) -> Path:
    """A service's revisions, where docs/development.md puts them (and its app.py reads them)."""
    return Path(services.__file__).parent / service / "migrations" / "versions"


SERVICES = [
    ServiceSchema("goals", GoalsBase.metadata, versions_of("goals")),
    ServiceSchema("sessions", SessionsBase.metadata, versions_of("sessions")),
    ServiceSchema("notifications", NotificationsBase.metadata, versions_of("notifications")),
]


def _differences(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "target_metadata": metadata}
    )
    diffs: list[Any] = compare_metadata(context, [platform_metadata, metadata])  # type: ignore[arg-type]
    return diffs


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _schema_differences(database: Database, metadata: MetaData) -> list[Any]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(_differences, metadata)


async def _table_names(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(_tables)


@pytest.mark.parametrize("service", SERVICES, ids=[service.name for service in SERVICES])
async def test_migrations_upgrade_match_models_and_downgrade_cleanly(
    service: ServiceSchema, database_url_for: Callable[[str], str]
) -> None:
    assert list(service.migrations.glob("*.py")), f"no revisions in {service.migrations}"
    url = database_url_for(service.name)
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    database = Database(url)
    expected_tables = set(platform_metadata.tables) | set(service.metadata.tables)
    try:
        await upgrade(database, service.migrations, service.metadata)
        assert await _table_names(database) == expected_tables | {"alembic_version"}
        assert await _schema_differences(database, service.metadata) == []

        await downgrade(database, service.migrations, service.metadata)
        assert await _table_names(database) <= {"alembic_version"}

        await upgrade(database, service.migrations, service.metadata)
        assert await _table_names(database) == expected_tables | {"alembic_version"}
        assert await _schema_differences(database, service.metadata) == []
    finally:
        await database.dispose()
