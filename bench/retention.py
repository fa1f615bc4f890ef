"""Retention soak: storage stays flat over several retention windows, and nothing is lost.

The embedded stack with every traffic table kept ``WINDOW`` seconds (floors
off, the purger every second). Goals are created and abandoned at a steady
rate for ``WINDOWS`` windows; each ``goal.created`` is followed to its webhook
(the ledger). After each window a census counts the rows of every table and
the size of every database. At steady state every traffic table (and the
databases) stays within 1.2x of the first window, while the ledger balances:
the purger removed only what was past its window.

    python -m bench.retention [--quick]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench.e2e import subscribe
from bench.lib import results
from bench.lib.http import ClientPool
from bench.lib.options import install_loop, parser
from bench.lib.phase import run_phase
from bench.lib.receiver import ReceiverProcess
from bench.lib.results import headline
from bench.lib.stack import RunningStack, embedded_stack
from shared.retention.soak import Census, growth, soak_environment, take_census

RATE = 10.0
GOAL = orjson.dumps(
    {
        "title": "Soak goal",
        "participants": [
            {
                "role": "mentee",
                "name": "Soak",
                "email": "soak@example.com",
                "timezone": "Europe/Berlin",
            }
        ],
    }
)


def sender(stack: RunningStack, pool: ClientPool) -> Any:
    headers = {**stack.headers(), "content-type": "application/json"}

    async def send(key: str) -> None:
        client = pool.next()
        created = await client.post(
            f"{stack.goals}/v1/goals", content=GOAL, headers={**headers, "x-correlation-id": key}
        )
        if created.status_code != 201:
            raise RuntimeError(f"HTTP {created.status_code}: {created.text[:200]}")
        closed = await client.post(
            f"{stack.goals}/v1/goals/{created.json()['id']}/abandon", headers=headers
        )
        if closed.status_code != 200:
            raise RuntimeError(f"abandon: HTTP {closed.status_code}: {closed.text[:200]}")

    return send


def table(censuses: list[Census]) -> str:
    names = sorted({name for census in censuses for name in census.rows})
    header = "| table | " + " | ".join(f"window {n + 1}" for n in range(len(censuses))) + " |"
    lines = [header, "|---|" + "---|" * len(censuses)]
    for name in names:
        live = " (live state)" if name not in censuses[0].traffic else ""
        counts = " | ".join(str(c.rows.get(name, 0)) for c in censuses)
        lines.append(f"| `{name}`{live} | {counts} |")
    for service in sorted(censuses[0].bytes):
        sizes = " | ".join(f"{c.bytes[service] / 1_048_576:.2f}" for c in censuses)
        lines.append(f"| {service} database file, MiB | {sizes} |")
        wal = " | ".join(f"{c.wal_bytes[service] / 1_048_576:.2f}" for c in censuses)
        lines.append(f"| {service} write-ahead log, MiB | {wal} |")
    return "\n".join(lines)


async def scenario(
    stack: RunningStack, receiver: ReceiverProcess, *, window: int, windows: int
) -> dict[str, Any]:
    await subscribe(stack, receiver, ["goal.created"])
    censuses: list[Census] = []
    phases = []
    async with ClientPool(clients=2, connections_per_client=4) as pool:
        send = sender(stack, pool)
        for n in range(windows):
            phase = await run_phase(
                f"window{n + 1}", rate=RATE, duration=window, send=send, receiver=receiver
            )
            phases.append(phase)
            censuses.append(await take_census(stack.data_dir))
            print(f"window {n + 1}: {phase.ledger} rows={censuses[-1].traffic}", flush=True)
    first = censuses[0]
    return {
        "window_seconds": window,
        "windows": windows,
        "rate": RATE,
        "ledgers": [p.ledger for p in phases],
        "rows": [c.rows for c in censuses],
        "bytes": [c.bytes for c in censuses],
        "wal_bytes": [c.wal_bytes for c in censuses],
        "row_growth": growth(
            first.traffic,
            {k: max(c.traffic.get(k, 0) for c in censuses[1:]) for k in first.traffic},
        ),
        "size_growth": growth(
            first.bytes, {k: max(c.bytes[k] for c in censuses[1:]) for k in first.bytes}, floor=1
        ),
        "balanced": all(p.ledger["balanced"] for p in phases),
        "table": table(censuses),
    }


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    window, windows = (10, 4) if args.quick else (30, 6)
    receiver = ReceiverProcess(hang_seconds=15.0)
    receiver.start()
    try:
        with embedded_stack(extra_env=soak_environment(window)) as stack:
            figures = asyncio.run(scenario(stack, receiver, window=window, windows=windows))
    finally:
        receiver.stop()
    print(figures["table"], flush=True)
    results.write(
        "retention",
        figures,
        headlines=[
            headline(
                "traffic rows, largest window / first",
                figures["row_growth"],
                "x",
                "<= 1.2",
                figures["row_growth"] <= 1.2,
            ),
            headline(
                "database size, largest window / first",
                figures["size_growth"],
                "x",
                "<= 1.2",
                figures["size_growth"] <= 1.2,
            ),
        ],
        database="sqlite",
        void=not figures["balanced"],
        notes=f"{windows} windows of {window} s, {RATE:g} goals/s created and abandoned",
        started_at=started,
    )


if __name__ == "__main__":
    main()
