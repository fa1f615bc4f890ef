"""Ingest: what one goals process (one uvicorn worker) accepts, alone with its broker.

Nothing else runs: no sessions or notifications consume what goals
publishes (its outbox relay still publishes every event to Tansu), so the
figures are the goals process's own. Three measurements:

* batch ingestion (``POST /v1/events``, 500 CloudEvents a batch, two clients
  in a closed loop): progress reports on existing goals, then goal upserts
  that create new goals;
* single ``POST /v1/goals``, 32 clients in a closed loop;
* single ``POST /v1/goals`` at an open-loop 300 requests/s: latency from the
  scheduled send to the answer.

Each figure comes with the goals process's CPU time per event.

    python -m bench.ingest [--postgres] [--quick]
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bench.e2e import GOAL
from bench.lib import results
from bench.lib.http import ClientPool
from bench.lib.options import database_name, install_loop, parser
from bench.lib.phase import load_average
from bench.lib.results import headline
from bench.lib.stack import SingleService, single_service
from bench.lib.stats import summary_ms

BATCH = 500
GOALS = 500
PARTICIPANTS = orjson.loads(GOAL)["participants"]


def _event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "/bench/crm",
        "type": kind,
        "data": data,
    }


def upserts(refs: list[str]) -> bytes:
    return orjson.dumps(
        [
            _event(
                "ingest.goal.upserted",
                {"external_ref": ref, "title": f"Goal {ref}", "participants": PARTICIPANTS},
            )
            for ref in refs
        ]
    )


def progress(refs: list[str], percent: int) -> bytes:
    return orjson.dumps(
        [
            _event("ingest.progress.reported", {"goal": {"external_ref": ref}, "percent": percent})
            for ref in refs
        ]
    )


async def closed_loop(
    workers: int, seconds: float, one: Callable[[], Awaitable[int]]
) -> tuple[int, float, list[float]]:
    """Run ``one`` back to back on ``workers`` tasks for ``seconds``.

    Returns the units done, the elapsed time and each call's latency.
    """
    done = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            units = await one()  # not `done += await ...`: that reads `done` before awaiting
            done += units
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return done, time.perf_counter() - started, latencies


async def scenario(goals: SingleService, *, quick: bool) -> dict[str, Any]:
    headers = {**goals.headers(), "content-type": "application/json"}
    figures: dict[str, Any] = {}
    seconds = 6.0 if quick else 15.0
    async with ClientPool(clients=16, connections_per_client=4) as pool:

        async def post_batch(body: bytes) -> int:
            response = await pool.next().post(
                f"{goals.url}/v1/events", content=body, headers=headers
            )
            response.raise_for_status()
            result = response.json()
            if result["rejected"]:
                raise RuntimeError(f"batch items rejected: {result['results'][:2]}")
            return int(result["accepted"])

        async def post_goal() -> int:
            response = await pool.next().post(
                f"{goals.url}/v1/goals", content=GOAL, headers=headers
            )
            if response.status_code != 201:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
            return 1

        refs = [f"bench-{n}" for n in range(GOALS)]
        await post_batch(upserts(refs))  # the goals the progress reports are about
        for _ in range(20):
            await post_goal()

        percents = itertools.cycle(range(1, 100))

        async def one_progress_batch() -> int:
            return await post_batch(progress(refs, next(percents)))

        figures["batch_progress"] = await measured(goals, 2, seconds, one_progress_batch)

        counter = itertools.count()

        async def one_upsert_batch() -> int:
            start = next(counter) * BATCH
            return await post_batch(upserts([f"new-{start + n}" for n in range(BATCH)]))

        figures["batch_creates"] = await measured(goals, 2, seconds, one_upsert_batch)
        figures["single_closed_loop"] = await measured(goals, 32, seconds, post_goal)
        figures["single_300_per_s"] = await open_loop_300(goals, pool, headers, seconds + 5)
    figures["rss_mb"] = goals.rss_mb()
    return figures


async def measured(
    goals: SingleService, workers: int, seconds: float, one: Callable[[], Awaitable[int]]
) -> dict[str, Any]:
    load = load_average()
    cpu = goals.cpu_seconds()
    done, elapsed, latencies = await closed_loop(workers, seconds, one)
    used = goals.cpu_seconds() - cpu
    figures = {
        "events": done,
        "seconds": round(elapsed, 2),
        "events_per_second": round(done / elapsed, 1),
        "goals_cpu_ms_per_event": round(1000 * used / max(done, 1), 3),
        "request_latency": summary_ms(latencies),
        "clients": workers,
        "load_average": [load, load_average()],
    }
    print(f"  {workers} clients: {figures['events_per_second']}/s, {figures}", flush=True)
    return figures


async def open_loop_300(
    goals: SingleService, pool: ClientPool, headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    """Single creates at 300/s on a fixed schedule; latency from the schedule to the answer."""
    from bench.lib.generator import open_loop

    latencies: list[float] = []
    failures = 0
    load = load_average()
    cpu = goals.cpu_seconds()

    async def send(_: int, scheduled: float) -> None:
        nonlocal failures
        response = await pool.next().post(f"{goals.url}/v1/goals", content=GOAL, headers=headers)
        if response.status_code == 201:
            latencies.append(time.time() - scheduled)
        else:
            failures += 1

    total = await open_loop(rate=300, duration=seconds, send=send)
    used = goals.cpu_seconds() - cpu
    return {
        "requests": total,
        "failures": failures,
        "latency": summary_ms(latencies),
        "goals_cpu_ms_per_event": round(1000 * used / max(total, 1), 3),
        "load_average": [load, load_average()],
    }


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    with single_service("goals", postgres=args.postgres) as goals:
        figures = asyncio.run(scenario(goals, quick=args.quick))
    batch = figures["batch_progress"]["events_per_second"]
    creates = figures["batch_creates"]["events_per_second"]
    single = figures["single_closed_loop"]["events_per_second"]
    at300 = figures["single_300_per_s"]
    p99 = at300["latency"]["p99_ms"]
    results.write(
        "ingest",
        figures,
        headlines=[
            headline(
                "batch ingestion, progress reports", batch, "events/s", ">= 5000", batch >= 5000
            ),
            headline(
                "batch ingestion, goal creates", creates, "events/s", ">= 5000", creates >= 5000
            ),
            headline(
                "single POST /v1/goals, 32 clients", single, "req/s", ">= 1000", single >= 1000
            ),
            headline(
                "single POST at 300/s, p99",
                p99,
                "ms",
                "< 50",
                p99 < 50 and at300["failures"] == 0,
            ),
        ],
        database=database_name(args.postgres),
        notes="goals alone with its broker; nothing consumes what it publishes",
        started_at=started,
    )


if __name__ == "__main__":
    main()
