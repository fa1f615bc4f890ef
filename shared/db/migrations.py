"""Apply Alembic migrations at start: the shared platform branch plus the service's own.

Replicas starting together on PostgreSQL take an advisory lock first, so only
one of them migrates and the others find the schema already current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from shared.db.database import Database
from shared.db.tables import platform_metadata

MIGRATIONS_DIR = Path(__file__).parent / "migration_scripts"
_MIGRATION_LOCK_ID = 7_301_202_611


def alembic_config(service_versions: Path, metadata: MetaData, url: str = "") -> Config:
    """An Alembic config whose versions span the platform branch and the service branch."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", f"{MIGRATIONS_DIR / 'versions'} {service_versions}")
    config.set_main_option("path_separator", "space")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["target_metadata"] = [platform_metadata, metadata]
    return config


async def upgrade(database: Database, service_versions: Path, metadata: MetaData) -> None:
    await _run(database, service_versions, metadata, "upgrade", "heads")


async def downgrade(database: Database, service_versions: Path, metadata: MetaData) -> None:
    await _run(database, service_versions, metadata, "downgrade", "base")


async def _run(
    database: Database, service_versions: Path, metadata: MetaData, action: str, target: str
) -> None:
    config = alembic_config(service_versions, metadata, database.url)

    def _apply(connection: Connection) -> None:
        config.attributes["connection"] = connection
        locked = connection.dialect.name == "postgresql"
        if locked:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        try:
            step: Any = getattr(command, action)
            step(config, target)
        finally:
            if locked:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )

    async with database.engine.connect() as connection:
        await connection.run_sync(_apply)
        await connection.commit()
