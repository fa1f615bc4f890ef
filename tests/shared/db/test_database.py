"""The database layer on SQLite and PostgreSQL: concurrent writers, instants, dedupe, leadership."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Connection, func, insert, select, text, update

from shared.db.database import Database, is_unavailable
from shared.db.leader import Leadership
from shared.db.tables import broker_clusters, idempotency_keys, outbox, processed_events
from shared.events.envelope import utc_now
from shared.kafka.dedupe import first_deliveries, first_delivery


async def test_concurrent_read_then_write_transactions_all_commit(database: Database) -> None:
    """On SQLite a deferred transaction that reads, then writes, fails at once with
    "database is locked" when another writer got in between; write transactions
    begin IMMEDIATE and wait their turn instead."""
    async with database.transaction() as session:
        await session.execute(insert(outbox), [_outbox_row("counter")])

    async def increment(worker: int) -> None:
        async with database.transaction() as session:
            current = (
                await session.execute(select(outbox.c.key).where(outbox.c.event_id == "counter"))
            ).scalar_one()
            await asyncio.sleep(0.01)  # let the others try to get in
            await session.execute(
                update(outbox)
                .where(outbox.c.event_id == "counter")
                .values(key=str(int(current or 0) + 1))
            )

    await asyncio.gather(*(increment(n) for n in range(8)))

    async with database.reader() as session:
        final = (
            await session.execute(select(outbox.c.key).where(outbox.c.event_id == "counter"))
        ).scalar_one()
    if database.is_sqlite:
        assert final == "8"  # serialised: no lost update, no "database is locked"
    else:
        assert 1 <= int(final) <= 8  # read committed: they all committed


async def test_a_reader_does_not_block_a_writer(database: Database) -> None:
    async with database.reader() as reading:
        await reading.execute(select(func.count()).select_from(outbox))
        async with asyncio.timeout(5), database.transaction() as writing:
            await writing.execute(insert(outbox), [_outbox_row("during-read")])
    async with database.reader() as session:
        assert (await session.execute(select(func.count()).select_from(outbox))).scalar_one() == 1


async def test_instants_come_back_aware_in_utc_and_naive_ones_are_refused(
    database: Database,
) -> None:
    berlin = timezone(timedelta(hours=2))
    moment = datetime(2026, 3, 29, 3, 30, tzinfo=berlin)
    async with database.transaction() as session:
        await session.execute(insert(outbox), [{**_outbox_row("tz"), "created_at": moment}])
    async with database.reader() as session:
        stored = (
            await session.execute(select(outbox.c.created_at).where(outbox.c.event_id == "tz"))
        ).scalar_one()
        oldest = (await session.execute(select(func.min(outbox.c.created_at)))).scalar_one()
        later = (
            await session.execute(
                select(func.count()).where(
                    outbox.c.created_at > datetime(2026, 3, 29, 1, 29, tzinfo=UTC)
                )
            )
        ).scalar_one()
    assert stored == moment
    assert stored.tzinfo == UTC
    assert oldest == moment  # aggregates keep the type (the outbox age gauge relies on it)
    assert later == 1

    async def naive() -> None:
        async with database.transaction() as session:
            row = {**_outbox_row("naive"), "created_at": datetime(2026, 1, 1)}
            await session.execute(insert(outbox), [row])

    with pytest.raises(Exception, match="naive datetime"):
        await naive()


async def test_first_delivery_is_true_once_and_rolls_back_with_the_work(
    database: Database,
) -> None:
    async def attempt(fail: bool) -> bool:
        async with database.transaction() as session:
            first = await first_delivery(session, "tests.consumer", "evt-1")
            if fail:
                raise RuntimeError("the handler's work failed")
            return first

    with pytest.raises(RuntimeError):
        await attempt(fail=True)
    assert await attempt(fail=False) is True  # the failed attempt left no mark
    assert await attempt(fail=False) is False  # a redelivery is recognised
    async with database.transaction() as session:
        assert await first_delivery(session, "tests.other-consumer", "evt-1") is True
        rows = (await session.execute(select(func.count()).select_from(processed_events))).scalar()
    assert rows == 2


async def test_first_deliveries_returns_only_the_ids_not_handled_before(
    database: Database,
) -> None:
    """One statement marks a whole batch, whatever its size; copies inside it count once."""
    async with database.transaction() as session:
        assert await first_deliveries(session, "tests.consumer", ["a", "b"]) == {"a", "b"}
    async with database.transaction() as session:
        batch = ["b", "c", "c", "d", "a", "e"]
        assert await first_deliveries(session, "tests.consumer", batch) == {"c", "d", "e"}
        assert await first_deliveries(session, "tests.other", ["a"]) == {"a"}
    async with database.reader() as session:
        marked = (await session.execute(select(processed_events.c.event_id))).scalars().all()
    assert sorted(marked) == ["a", "a", "b", "c", "d", "e"]


async def test_only_one_leader_at_a_time(database: Database) -> None:
    one, two = Leadership(database, "tests:job"), Leadership(database, "tests:job")
    try:
        assert await one.acquire() is True
        if database.is_sqlite:  # one process per SQLite file: it always leads
            assert await two.acquire() is True
            return
        assert await two.acquire() is False
        assert await one.acquire() is True  # and stays leader
        await one.release()
        assert await two.acquire() is True
        assert await one.acquire() is False
    finally:
        await one.release()
        await two.release()


async def test_unavailability_is_told_apart_from_a_wrong_query(database: Database) -> None:
    with pytest.raises(Exception) as wrong:  # noqa: PT011 - any driver's error type
        async with database.reader() as session:
            await session.execute(text("SELECT no_such_column FROM outbox"))
    # SQLite reports bad SQL as OperationalError too; it must still not count as an outage.
    assert not is_unavailable(wrong.value)

    away = Database(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none"
        if not database.is_sqlite
        else "sqlite+aiosqlite:////nonexistent-dir/x.db"
    )
    try:
        with pytest.raises(Exception) as unreachable:  # noqa: PT011
            await away.ping()
        assert is_unavailable(unreachable.value)
    finally:
        await away.dispose()


async def test_platform_tables_exist_after_migrations(database: Database) -> None:
    async with database.reader() as session:
        for table in (outbox, processed_events, idempotency_keys):
            assert (await session.execute(select(func.count()).select_from(table))).scalar() == 0


def _outbox_row(event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "event_type": "test.event",
        "topic": "t",
        "key": "0",
        "payload": b"{}",
        "headers": {},
        "created_at": utc_now(),
        "sent_at": None,
    }


async def test_run_core_commits_what_returns_and_rolls_back_what_raises(
    database: Database,
) -> None:
    """One-greenlet transactions (the relay's read and mark) commit, roll back and queue
    like ``transaction()``: concurrent writers on SQLite all get in, one at a time."""

    def record(relay: str) -> Callable[[Connection], None]:
        def work(connection: Connection) -> None:
            connection.execute(
                insert(broker_clusters).values(relay=relay, cluster_id="c1", seen_at=utc_now())
            )

        return work

    def record_then_fail(connection: Connection) -> None:
        record("failed")(connection)
        raise RuntimeError("after the insert")

    await asyncio.gather(*(database.run_core(record(f"r{n}"), write=True) for n in range(8)))
    with pytest.raises(RuntimeError, match="after the insert"):
        await database.run_core(record_then_fail, write=True)

    def relays(connection: Connection) -> list[str]:
        statement = select(broker_clusters.c.relay).order_by(broker_clusters.c.relay)
        return list(connection.execute(statement).scalars())

    assert await database.run_core(relays, write=False) == [f"r{n}" for n in range(8)]
    async with database.reader() as session:  # and the sessions see the same
        count = (await session.execute(select(func.count()).select_from(broker_clusters))).scalar()
    assert count == 8
