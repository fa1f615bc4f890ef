"""Fan-out: one event to 100 webhook endpoints; all delivered within 1 s.

The embedded stack with 100 endpoints subscribed to ``goal.created``, each
at its own path on the verifying receiver (and so its own lane, client and
secret). One goal is created a second for 20 s (after a warm-up that opens
every endpoint's connection); an event counts as delivered when its 100th
webhook has verified, and its latency runs from the moment its POST was
scheduled to that last delivery.

    python -m bench.fanout [--postgres] [--quick]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.e2e import goal_sender, subscribe
from bench.lib import results
from bench.lib.http import ClientPool
from bench.lib.options import database_name, install_loop, parser
from bench.lib.phase import run_phase
from bench.lib.receiver import ReceiverProcess
from bench.lib.results import headline
from bench.lib.stack import RunningStack, stack_with_receiver
from bench.lib.stats import summary_ms

ENDPOINTS = 100


async def scenario(
    stack: RunningStack, receiver: ReceiverProcess, *, quick: bool
) -> dict[str, Any]:
    for n in range(ENDPOINTS):
        await subscribe(stack, receiver, ["goal.created"], path=f"/hook/{n}")
    async with ClientPool(clients=2, connections_per_client=2) as pool:
        send = goal_sender(stack, pool)
        warm = await run_phase(
            "warm", rate=1, duration=3, send=send, receiver=receiver, expected_per_key=ENDPOINTS
        )
        print(f"warm-up: {warm.ledger} {warm.latency}", flush=True)
        main = await run_phase(
            "fanout",
            rate=1,
            duration=8 if quick else 20,
            send=send,
            receiver=receiver,
            expected_per_key=ENDPOINTS,
        )
    each = [v for values in main.ledger_object.target_latencies().values() for v in values]
    figures = {
        **main.figures(),
        "endpoints": ENDPOINTS,
        "every_delivery": summary_ms(each),
        "_main": main,
    }
    return figures


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    with stack_with_receiver(postgres=args.postgres) as (stack, receiver):
        figures = asyncio.run(scenario(stack, receiver, quick=args.quick))
    main_phase = figures.pop("_main")
    last = main_phase.latency
    results.write(
        "fanout",
        figures,
        headlines=[
            headline("last of 100 deliveries, p50", last["p50_ms"], "ms", "", None),
            headline(
                "last of 100 deliveries, max",
                last["max_ms"],
                "ms",
                "<= 1000",
                main_phase.healthy and last["max_ms"] <= 1000,
            ),
        ],
        database=database_name(args.postgres),
        void=not main_phase.ledger["balanced"],
        notes="one goal.created a second to 100 endpoints, 20 events",
        started_at=started,
    )


if __name__ == "__main__":
    main()
