"""The scheduler's pass in-process: CPU per pass of due misses, without Kafka or HTTP.

``bench.scheduler`` times 10,000 misses through a whole sessions process;
this is the loop for judging one change to the pass itself. Goals are
planned through the sessions intake handler (the real ``goal.created``
path), their misses made due in one second, then the scheduler's
``run_once`` is called until nothing is due, each pass timed by the process's
CPU clock. With ``--profile`` the passes run under cProfile and its tables (own
time, cumulative time) are printed.

    python -m bench.scheduler_pass [--goals 5000] [--profile]

SQLite only: it is the measuring loop for a change, ``bench.scheduler`` the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from bench.scheduler import LEAD_SECONDS, arm_burst, goal_created
from services.sessions.app import MIGRATIONS
from services.sessions.intake import GoalEventHandler
from services.sessions.models import Base
from services.sessions.settings import SessionsSettings
from services.sessions.timers.planner import Rules
from services.sessions.timers.scheduler import Scheduler
from shared.clock import ManualClock
from shared.db.database import Database
from shared.db.migrations import upgrade
from shared.events import parse_event
from shared.http.server import tune_collector
from shared.kafka.consumed import ConsumedEvent
from shared.logs import configure_logging
from shared.outbox.writer import Outbox

INTAKE_BATCH = 200


async def plan(database: Database, settings: SessionsSettings, clock: ManualClock, n: int) -> None:
    handler = GoalEventHandler(database, Outbox(), clock, Rules.from_settings(settings))
    now = clock.now()
    for start in range(0, n, INTAKE_BATCH):
        batch = []
        for offset in range(start, min(n, start + INTAKE_BATCH)):
            event = parse_event(goal_created(str(uuid.uuid4()), now))
            record = SimpleNamespace(topic="goals", partition=0, offset=offset, headers=[])
            batch.append(ConsumedEvent(event=event, record=cast(Any, record)))
        await handler(batch)


async def measure(url: str, goals: int, profile: bool) -> dict[str, Any]:
    database = Database(url)
    try:
        await upgrade(database, MIGRATIONS, Base.metadata)
        settings = SessionsSettings()
        clock = ManualClock(datetime.now(UTC))
        await plan(database, settings, clock, goals)
        due = clock.now() + timedelta(seconds=LEAD_SECONDS)  # as bench.scheduler arms it
        armed = await arm_burst(url, due)
        await clock.set(due + timedelta(seconds=1))
        scheduler = Scheduler(database=database, outbox=Outbox(), clock=clock, settings=settings)
        if settings.gc_tuning:  # as a served sessions process has it (GC_TUNING)
            tune_collector()
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        passes: list[float] = []
        fired = 0
        while True:
            began = time.process_time()
            _, count = await scheduler.run_once(clock.now())
            if not count:
                break
            passes.append((time.process_time() - began) * 1000)
            fired += count
        if profiler is not None:
            profiler.disable()
            report = pstats.Stats(profiler).strip_dirs()
            report.sort_stats("tottime").print_stats(30)
            report.sort_stats("cumulative").print_stats(60)
        steady = passes[1:-1] or passes  # the first warms caches, the last is short
        return {
            "armed": armed,
            "fired": fired,
            "passes": len(passes),
            "pass_cpu_ms_median": round(statistics.median(steady), 1),
            "cpu_ms_per_timer": round(sum(passes) / max(fired, 1), 3),
        }
    finally:
        await database.dispose()


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--goals", type=int, default=5000)
    options.add_argument("--profile", action="store_true")
    args = options.parse_args()
    with open(os.devnull, "w") as sink, tempfile.TemporaryDirectory() as directory:
        # The service's own renderer (one JSON line per timer), into nothing.
        configure_logging("sessions", fmt="json", stream=sink)
        url = f"sqlite+aiosqlite:///{Path(directory) / 'sessions.db'}"
        print(asyncio.run(measure(url, args.goals, args.profile)))


if __name__ == "__main__":
    main()
