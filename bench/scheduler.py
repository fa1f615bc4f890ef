"""Scheduler: 10,000 misses due in one second, among 1,000,000 active check-in schedules.

The sessions process alone with its broker. 10,000 goals with a daily
check-in policy are planned the real way (``goal.created`` events through the
sessions consumer), each with its open occurrence and its timers. Their miss
timers are then set due in one and the same second, a few seconds ahead, and
the process is started again: the scheduler must notice them and have all
10,000 ``checkin.missed`` events on Kafka within 2 s of that second.

That is done twice: with the 10,000 schedules alone, and after cloning them
(rows copied in SQL, ids rewritten, everything due weeks later) to 1,000,000
schedules: goal projections, open occurrences and their timers. The second
burst fires the misses the first one planned. A pass's cost (the
``duration_ms`` of each ``sessions.scheduler.pass`` log line, 500 timers a
pass) at 1,000,000 must be within 2x of the cost at 10,000: the cost follows
the due work, not the total. The RSS of the sessions process is read after
the second burst.

    python -m bench.scheduler [--postgres] [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Table, bindparam, func, select, text, update

from bench.lib import results
from bench.lib.options import database_name, install_loop, parser
from bench.lib.phase import load_average
from bench.lib.profile import profiling
from bench.lib.results import headline
from bench.lib.stack import SingleService, drop_database, remove_data, single_service
from services.sessions.models import GoalProjection, Occurrence, Timer
from shared.db.database import Database
from shared.db.types import UtcDateTime
from shared.events import build_event
from shared.events.catalog.common import Participant
from shared.events.catalog.goals import GoalCreated, GoalEventData, GoalSnapshot
from shared.events.catalog.policy import CheckinPolicy, DailyCadence

SEED = 10_000
TOTAL = 1_000_000
TENANT = "bench"
LEAD_SECONDS = 25.0
"""How far ahead of a restart the burst is due: start-up and a consumer-group join fit in it."""


def goal_created(goal_id: str, now: datetime) -> bytes:
    snapshot = GoalSnapshot(
        goal_id=goal_id,
        title="Daily check-in",
        status="active",
        version=1,
        participants=[
            Participant(role="mentee", name="Ada", email="ada@example.com", timezone="UTC")
        ],
        policy=CheckinPolicy(
            cadence=DailyCadence(kind="daily"),
            timezone="UTC",
            starts_on=(now + timedelta(days=1)).date(),
        ),
        created_at=now,
        updated_at=now,
    )
    event = build_event(
        GoalCreated,
        GoalEventData(goal=snapshot),
        tenant_id=TENANT,
        partition_key=goal_id,
        source="/bench/scheduler",
    )
    return event.to_json()


async def seed(service: SingleService, count: int) -> float:
    """Plan ``count`` schedules through the sessions consumer; returns seconds taken."""
    producer = AIOKafkaProducer(bootstrap_servers=service.broker, acks="all", linger_ms=5)
    await producer.start()
    started = time.time()
    now = datetime.now(UTC)
    try:
        for _ in range(count):
            goal_id = str(uuid.uuid4())
            await producer.send("goals", goal_created(goal_id, now), key=goal_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    database = Database(service.database_url)
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            async with database.reader() as session:
                planned = await session.scalar(
                    select(func.count()).where(GoalProjection.schedule_state == "active")
                )
            if planned is not None and planned >= count:
                break
            await asyncio.sleep(0.5)
    finally:
        await database.dispose()
    return time.time() - started


def _original(column: Any) -> Any:
    """Rows of the seeded schedules (clones have ``-c`` at position 30 of their ids)."""
    return func.substr(column, 30, 2) != "-c"


async def arm_burst(database_url: str, due: datetime) -> int:
    """Make the seeded goals' unfired misses due at ``due``; push their other timers away."""
    database = Database(database_url)
    later = due + timedelta(days=20)
    try:
        async with database.transaction() as session:
            result = await session.execute(
                update(Timer)
                .where(Timer.fired_at.is_(None), _original(Timer.id))
                .where(Timer.kind == "checkin.missed")
                .values(due_at=due)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(Timer)
                .where(Timer.fired_at.is_(None), _original(Timer.id))
                .where(Timer.kind != "checkin.missed")
                .values(due_at=later)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(Occurrence)
                .where(Occurrence.status == "open", _original(Occurrence.id))
                .values(deadline_at=due)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0))
    finally:
        await database.dispose()


COPIES_PER_STATEMENT = 11


async def clone(database_url: str, total: int) -> tuple[int, float]:
    """Copy the seeded schedules until there are ``total``; returns (schedules, seconds).

    The seeded rows go to temporary tables once; each statement then writes
    several copies of them (a cross join with a list of id suffixes), so no
    statement scans the growing tables. On SQLite the WAL is truncated after
    each statement: nothing else reads the file meanwhile, and 1,000,000
    schedules written through it would otherwise leave tens of GB behind.
    """
    database = Database(database_url)
    started = time.time()
    far = datetime.now(UTC) + timedelta(days=40)
    tables: list[tuple[Table, str | None]] = [
        (GoalProjection.__table__, None),  # type: ignore[list-item]
        (Occurrence.__table__, "status = 'open'"),  # type: ignore[list-item]
        (Timer.__table__, "fired_at IS NULL"),  # type: ignore[list-item]
    ]
    try:
        async with database.engine.connect() as connection:
            seeded = int(
                await connection.scalar(select(func.count()).select_from(GoalProjection)) or 0
            )
            copies = total // seeded - 1
            for table, key in tables:
                seed = f"seed_{table.name}"
                where = " AND ".join(["length(goal_id) = 36", *([key] if key else [])])
                await connection.execute(
                    text(f"CREATE TEMP TABLE {seed} AS SELECT * FROM {table.name} WHERE {where}")
                )
                statement = _copy_statement(table, seed)
                for first in range(1, copies + 1, COPIES_PER_STATEMENT):
                    numbers = range(first, min(first + COPIES_PER_STATEMENT, copies + 1))
                    suffixes = " UNION ALL ".join(f"SELECT '-c{n:05d}' AS suffix" for n in numbers)
                    copy = text(statement.replace("{suffixes}", suffixes))
                    if ":far" in statement:
                        copy = copy.bindparams(bindparam("far", type_=UtcDateTime))
                    await connection.execute(copy, {"far": far})
                    await connection.commit()
                    _truncate_wal(database)
                await connection.execute(text(f"DROP TABLE {seed}"))
                await connection.commit()
            count = await connection.scalar(select(func.count()).select_from(GoalProjection))
    finally:
        await database.dispose()
    return int(count or 0), time.time() - started


def _copy_statement(table: Table, seed: str) -> str:
    """``INSERT ... SELECT`` of the seed rows once per suffix, ids and due times rewritten."""
    names = [column.name for column in table.columns]
    expressions = []
    for name in names:
        if name in ("id", "occurrence_id"):
            expressions.append(f"substr(seed.{name}, 1, 29) || s.suffix")
        elif name == "goal_id":
            expressions.append("seed.goal_id || s.suffix")
        elif name in ("due_at", "opens_at", "deadline_at"):
            expressions.append(":far")
        else:
            expressions.append(f"seed.{name}")
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(expressions)} FROM {seed} AS seed CROSS JOIN ({{suffixes}}) AS s"
    )


def _truncate_wal(database: Database) -> None:
    if database.is_sqlite and database.engine.url.database:
        with contextlib.closing(sqlite3.connect(database.engine.url.database)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


async def watch_misses(service: SingleService, expected: int, due: datetime) -> dict[str, Any]:
    """Read ``checkin.missed`` from the sessions topic until ``expected`` arrived (or 90 s)."""
    consumer = AIOKafkaConsumer(
        "sessions",
        bootstrap_servers=service.broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    stamps: list[float] = []
    seen: set[str] = set()
    deadline = time.time() + (due - datetime.now(UTC)).total_seconds() + 90
    try:
        while len(seen) < expected and time.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    body = json.loads(record.value or b"{}")
                    if _of_this_burst(body, due) and body["id"] not in seen:
                        seen.add(body["id"])
                        stamps.append(record.timestamp / 1000)
    finally:
        await consumer.stop()
    due_at = due.timestamp()
    return {
        "expected": expected,
        "emitted": len(seen),
        "first_after_due_s": round(min(stamps) - due_at, 3) if stamps else None,
        "last_after_due_s": round(max(stamps) - due_at, 3) if stamps else None,
    }


def _of_this_burst(body: dict[str, Any], due: datetime) -> bool:
    """A miss of the occurrences armed for ``due``.

    Not any miss on the topic: the second run's broker is new (memory-only),
    so the service publishes its recent outbox rows again, the first burst's
    misses among them (the outbox replay of a new cluster), before this burst.
    """
    if body.get("type") != "checkin.missed":
        return False
    deadline = body.get("data", {}).get("occurrence", {}).get("deadline_at")
    return isinstance(deadline, str) and datetime.fromisoformat(deadline) == due


def pass_durations(log_file: Path, since: float) -> list[float]:
    """``duration_ms`` of full scheduler passes logged after ``since``."""
    durations = []
    for line in log_file.read_text(errors="replace").splitlines():
        if '"sessions.scheduler.pass"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        stamp = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
        if stamp >= since and entry.get("claimed", 0) >= 500 and "duration_ms" in entry:
            durations.append(float(entry["duration_ms"]))
    return durations


async def burst(service: SingleService, due: datetime, expected: int) -> dict[str, Any]:
    load = load_average()
    misses = await watch_misses(service, expected, due)
    durations = pass_durations(service.log_file, due.timestamp() - 1)
    return {
        **misses,
        "passes": len(durations),
        "pass_ms_median": round(statistics.median(durations), 1) if durations else None,
        "pass_ms_max": max(durations) if durations else None,
        "load_average": [load, load_average()],
    }


def run(*, postgres: bool, quick: bool, profile: bool = False) -> dict[str, Any]:
    seed_count = 2_000 if quick else SEED
    total = 100_000 if quick else TOTAL
    figures: dict[str, Any] = {"seeded": seed_count}
    with single_service("sessions", postgres=postgres, keep_data=True) as service:
        figures["seed_seconds"] = round(asyncio.run(seed(service, seed_count)), 1)
        database_url, data_dir = service.database_url, service.data_dir
    print(f"seeded {seed_count} schedules in {figures['seed_seconds']} s", flush=True)
    try:
        bursts(figures, database_url, data_dir, seed_count, total, profile)
    finally:
        drop_database(database_url)
        remove_data(data_dir)
    return figures


def bursts(
    figures: dict[str, Any],
    database_url: str,
    data_dir: Path,
    seed_count: int,
    total: int,
    profile: bool,
) -> None:
    """The burst at the seeded size, then again after cloning up to ``total`` schedules."""
    for label, schedules in (("at_10k", seed_count), ("at_1m", total)):
        if schedules > seed_count:
            count, seconds = asyncio.run(clone(database_url, schedules))
            figures["schedules"] = count
            figures["clone_seconds"] = round(seconds, 1)
            print(f"cloned to {count} schedules in {seconds:.0f} s", flush=True)
        due = (datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)).replace(microsecond=0)
        armed = asyncio.run(arm_burst(database_url, due))
        with single_service(
            "sessions", database_url=database_url, data_dir=data_dir / label
        ) as service:
            with profiling(profile, f"scheduler-{label}", {"sessions": service.pid}):
                figures[label] = asyncio.run(burst(service, due, armed))
            figures[label]["armed"] = armed
            if label == "at_1m":
                figures["rss_mb_at_1m"] = service.rss_mb()
        print(f"{label}: {figures[label]}", flush=True)


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    figures = run(postgres=args.postgres, quick=args.quick, profile=args.profile)
    small, big = figures["at_10k"], figures["at_1m"]
    detect = big["last_after_due_s"]
    ratio = (
        round(big["pass_ms_median"] / small["pass_ms_median"], 2)
        if big["pass_ms_median"] and small["pass_ms_median"]
        else None
    )
    figures["pass_cost_ratio"] = ratio
    complete = all(f["emitted"] == f["expected"] for f in (small, big))
    results.write(
        "scheduler",
        figures,
        headlines=[
            headline("schedules", figures.get("schedules", 0), ""),
            headline(
                "10,000 misses due in one second: last emitted after",
                detect if detect is not None else "never",
                "s",
                "<= 2",
                complete and detect is not None and detect <= 2,
            ),
            headline("pass of 500, median at 10k", small["pass_ms_median"] or 0, "ms"),
            headline("pass of 500, median at 1M", big["pass_ms_median"] or 0, "ms"),
            headline(
                "pass cost 1M / 10k", ratio or 0, "x", "<= 2", ratio is not None and ratio <= 2
            ),
            headline("sessions RSS at 1M schedules", figures.get("rss_mb_at_1m", 0), "MiB"),
        ],
        database=database_name(args.postgres),
        void=not complete,
        notes=f"daily policies; misses armed {date.today().isoformat()} a few seconds ahead",
        started_at=started,
    )


if __name__ == "__main__":
    main()
