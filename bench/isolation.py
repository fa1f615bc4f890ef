"""Isolation: one endpoint hanging 15 s on every request must not slow the healthy ones.

The embedded stack with 10 healthy endpoints subscribed to ``goal.created``
(each at its own path on the verifying receiver). Two phases at the same
load, 20 goals a second (200 webhooks a second) for 30 s: first the 10 alone,
then with an 11th endpoint whose every request hangs 15 s (the service's
webhook timeout), so its four lane slots are always taken and its retries
pile up. The healthy endpoints' p99 (every delivery, from the scheduled POST)
with the hanging one must stay within 1.2x of the run without it.

    python -m bench.isolation [--postgres] [--quick]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench.e2e import goal_sender, subscribe
from bench.lib import results
from bench.lib.http import ClientPool
from bench.lib.options import database_name, install_loop, parser
from bench.lib.phase import PhaseResult, run_phase
from bench.lib.receiver import ReceiverProcess
from bench.lib.results import headline
from bench.lib.stack import RunningStack, stack_with_receiver
from bench.lib.stats import summary_ms

HEALTHY = 10
RATE = 20.0


def healthy_latencies(phase: PhaseResult) -> list[float]:
    return [
        value
        for target, values in phase.ledger_object.target_latencies().items()
        if not target.startswith("/hang")
        for value in values
    ]


async def scenario(
    stack: RunningStack, receiver: ReceiverProcess, *, quick: bool
) -> dict[str, Any]:
    for n in range(HEALTHY):
        await subscribe(stack, receiver, ["goal.created"], path=f"/hook/{n}")
    seconds = 10 if quick else 30
    figures: dict[str, Any] = {}
    phases: dict[str, PhaseResult] = {}
    async with ClientPool(clients=4, connections_per_client=4) as pool:
        send = goal_sender(stack, pool)
        await run_phase(
            "warm", rate=5, duration=3, send=send, receiver=receiver, expected_per_key=HEALTHY
        )
        phases["alone"] = await run_phase(
            "alone",
            rate=RATE,
            duration=seconds,
            send=send,
            receiver=receiver,
            expected_per_key=HEALTHY,
        )
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{stack.notifications}/v1/endpoints",
                json={"url": f"{receiver.url}/hang", "event_types": ["goal.created"]},
                headers=stack.headers(),
            )
            response.raise_for_status()
        phases["with_hanging"] = await run_phase(
            "hang",
            rate=RATE,
            duration=seconds,
            send=send,
            receiver=receiver,
            expected_per_key=HEALTHY,
        )
    for name, phase in phases.items():
        figures[name] = {
            **phase.figures(),
            "healthy_deliveries": summary_ms(healthy_latencies(phase)),
        }
        print(f"{name}: {figures[name]['healthy_deliveries']} {phase.ledger}", flush=True)
    figures["_phases"] = phases
    return figures


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    with stack_with_receiver(postgres=args.postgres, hang_seconds=15.0) as (stack, receiver):
        figures = asyncio.run(scenario(stack, receiver, quick=args.quick))
    phases: dict[str, PhaseResult] = figures.pop("_phases")
    alone = figures["alone"]["healthy_deliveries"]["p99_ms"]
    hanging = figures["with_hanging"]["healthy_deliveries"]["p99_ms"]
    ratio = round(hanging / alone, 2) if alone else 0.0
    figures["p99_ratio"] = ratio
    clean = all(p.healthy for p in phases.values())
    results.write(
        "isolation",
        figures,
        headlines=[
            headline("healthy p99, 10 endpoints alone", alone, "ms"),
            headline("healthy p99, with one hanging 15 s", hanging, "ms"),
            headline("ratio", ratio, "x", "<= 1.2", clean and ratio <= 1.2),
        ],
        database=database_name(args.postgres),
        void=not all(p.ledger["balanced"] for p in phases.values()),
        notes="20 goal.created/s to 10 healthy endpoints, then with an 11th hanging 15 s",
        started_at=started,
    )


if __name__ == "__main__":
    main()
