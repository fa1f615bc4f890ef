"""Intake's per-batch lookups of the people involved, on SQLite and PostgreSQL.

Suppressed people, email preferences and unsubscribes are each read with one
prebuilt statement per batch whatever its size (expanding bound lists);
these pin that each returns exactly the matching rows, across the chunks
the suppression lookup splits a large batch into.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from services.notifications.app import MIGRATIONS
from services.notifications.email.repository import EmailLookups
from services.notifications.models import Base, Preference, Suppression, Unsubscribe
from services.notifications.privacy.suppression import suppressed_keys
from shared.db.database import Database
from tests.support.databases import migrated_database

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
async def database(database_url_for: Callable[[str], str]) -> AsyncIterator[Database]:
    async with migrated_database(
        database_url_for("notifications"), MIGRATIONS, Base.metadata
    ) as database:
        yield database


async def test_suppressed_keys_are_found_among_a_batch_larger_than_one_chunk(
    database: Database,
) -> None:
    suppressed = {(f"tenant-{n % 3}", f"key-{n:04d}") for n in range(0, 900, 7)}
    async with database.transaction() as session:
        session.add_all(
            Suppression(tenant_id=t, person_key=k, erasure_id="erasure-1", created_at=NOW)
            for t, k in suppressed
        )
        session.add(  # the same key in another tenant is another person
            Suppression(tenant_id="other", person_key="key-0001", erasure_id="e-2", created_at=NOW)
        )
    asked = {(f"tenant-{n % 3}", f"key-{n:04d}") for n in range(900)}  # 900: three chunks
    assert await database.run_core(lambda c: suppressed_keys(c, asked), write=False) == suppressed
    assert await database.run_core(lambda c: suppressed_keys(c, []), write=False) == set()


async def test_preferences_and_unsubscribes_come_back_for_the_asked_people_only(
    database: Database,
) -> None:
    async with database.transaction() as session:
        session.add_all(
            [
                Preference(
                    tenant_id="acme", email="ana@example.com", delivery="digest", updated_at=NOW
                ),
                Preference(
                    tenant_id="acme", email="bo@example.com", delivery="immediate", updated_at=NOW
                ),
                Preference(
                    tenant_id="globex",
                    email="ana@example.com",
                    delivery="immediate",
                    updated_at=NOW,
                ),
                Unsubscribe(
                    tenant_id="acme",
                    email="ana@example.com",
                    event_type="checkin.missed",
                    created_at=NOW,
                ),
                Unsubscribe(
                    tenant_id="globex", email="cy@example.com", event_type="*", created_at=NOW
                ),
            ]
        )
    asked = {("acme", "ana@example.com"), ("acme", "cy@example.com")}
    preferences = await database.run_core(lambda c: EmailLookups(c).preferences(asked), write=False)
    unsubscribed = await database.run_core(
        lambda c: EmailLookups(c).unsubscribed(asked), write=False
    )
    assert {key: p.delivery for key, p in preferences.items()} == {
        ("acme", "ana@example.com"): "digest"
    }
    # The lookup is by tenant and by address; the caller keeps the pairs it asked for.
    assert ("acme", "ana@example.com", "checkin.missed") in unsubscribed
    assert all(tenant == "acme" for tenant, _, _ in unsubscribed)
