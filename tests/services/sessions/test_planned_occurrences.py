"""Planned occurrences are buffered until written: nothing in the transaction may miss one.

The planner hands new occurrences to the repository, which writes them in
one INSERT; every read or change of occurrences writes the buffer first,
and ``Planner.flush`` writes it (before the timers) when the owner of the
transaction is done. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.sessions.app import MIGRATIONS
from services.sessions.models import Base
from services.sessions.repository import NewOccurrence, SessionsRepository
from shared.db.database import Database
from tests.support.databases import migrated_database

DUE = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def planned(goal_id: str, due: datetime = DUE, sequence: int = 1) -> NewOccurrence:
    return NewOccurrence(
        id=f"{goal_id}-{sequence}",
        tenant_id="acme",
        goal_id=goal_id,
        sequence=sequence,
        due_at=due,
        nominal_local="2026-03-29T09:00:00",
        local_due="2026-03-29T09:00:00",
        timezone="Europe/Berlin",
        opens_at=due - timedelta(hours=12),
        deadline_at=due + timedelta(minutes=30),
        grace_minutes=30,
        rule="RRULE FREQ=DAILY",
        dst_decision=None,
        created_at=due - timedelta(days=1),
    )


@pytest.fixture
async def database(database_url_for: Callable[[str], str]) -> AsyncIterator[Database]:
    async with migrated_database(
        database_url_for("sessions"), MIGRATIONS, Base.metadata
    ) as database:
        yield database


async def test_a_read_in_the_same_transaction_sees_what_was_planned(database: Database) -> None:
    async with database.transaction() as session:
        repo = SessionsRepository(session)
        repo.plan_occurrence(planned("g-1"))
        found = await repo.open_occurrence("g-1")
        assert found is not None
        assert (found.id, found.status, found.due_at) == ("g-1-1", "open", DUE)
        assert found.snoozed_minutes == 0
        assert found.misses_in_row == 0
        found.status = "missed"  # a change to it is tracked like any loaded row's
    async with database.reader() as session:
        again = await SessionsRepository(session).occurrence("g-1", "g-1-1")
        assert again is not None
        assert again.status == "missed"


async def test_what_was_planned_is_written_by_write_planned_before_the_commit(
    database: Database,
) -> None:
    async with database.transaction() as session:
        repo = SessionsRepository(session)
        for number in (1, 2, 3):
            repo.plan_occurrence(planned(f"g-{number}"))
        await repo.write_planned()
        await repo.write_planned()  # nothing left: no second INSERT of the same rows
    async with database.reader() as session:
        repo = SessionsRepository(session)
        found = await repo.occurrences_by_id(["g-1-1", "g-2-1", "g-3-1"])
        assert sorted(found) == ["g-1-1", "g-2-1", "g-3-1"]
        assert found["g-2-1"].deadline_at == DUE + timedelta(minutes=30)


async def test_a_plan_never_written_is_never_committed(database: Database) -> None:
    """The buffer is the transaction's: an owner that does not write it commits nothing of it
    (which is why every owner ends with ``Planner.flush``)."""
    async with database.transaction() as session:
        SessionsRepository(session).plan_occurrence(planned("g-9"))
    async with database.reader() as session:
        assert await SessionsRepository(session).latest_occurrence("g-9") is None
