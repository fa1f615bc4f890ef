"""Fixtures for tests of the shared library: a platform-only database on each backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from shared.db.database import Database
from shared.db.tables import new_metadata
from tests.support.databases import migrated_database


@pytest.fixture
async def database(
    database_url_for: Callable[[str], str], tmp_path: Path
) -> AsyncIterator[Database]:
    """A migrated database holding only the platform branch (outbox, dedupe, idempotency)."""
    no_service_revisions = tmp_path / "versions"
    no_service_revisions.mkdir()
    async with migrated_database(
        database_url_for("platform"), no_service_revisions, new_metadata()
    ) as database:
        yield database


@pytest.fixture
def service_name() -> str:
    """A service label of its own, so this test's metrics are apart from every other test's."""
    return f"outbox-{uuid.uuid4().hex[:8]}"
