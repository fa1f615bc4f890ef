"""End to end: from a goal POSTed to the goals service to a verified webhook on loopback.

The embedded stack (``python -m shared.devstack``: Tansu, the three services,
SMTP sink, console) runs as ``make run`` runs it, on free ports. One webhook
endpoint subscribes to ``goal.created``; every ``POST /v1/goals`` carries its
ledger key as ``X-Correlation-ID``, which the event carries as its
``correlationid`` all the way to the receiver (its own process, verifying
every Standard Webhooks signature). Latency runs from the moment each POST
was scheduled.

Phases: a warm-up (consumer groups joined, connections open), a steady 200
events/s for 60 s, then the highest rate that holds 60 s with p99 under 1 s
(short probes climb a ladder of rates; the best is confirmed for the full 60 s).

    python -m bench.e2e [--postgres] [--quick] [--tracing]

``--tracing`` runs the same with OpenTelemetry on at 100% sampling, every
span exported over OTLP/HTTP to a sink process (``bench/lib/otlp.py``), and
writes the scenario as ``e2e-tracing``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import orjson

from bench.lib import results
from bench.lib.cpu import CpuMeter
from bench.lib.http import ClientPool
from bench.lib.options import database_name, install_loop, parser
from bench.lib.otlp import OtlpSink
from bench.lib.phase import PhaseResult, throughput_phases
from bench.lib.profile import profiling
from bench.lib.receiver import ReceiverProcess
from bench.lib.results import headline
from bench.lib.stack import RunningStack, stack_with_receiver

GOAL = orjson.dumps(
    {
        "title": "Run a half marathon",
        "description": "Benchmark goal",
        "participants": [
            {
                "role": "mentee",
                "name": "Ada",
                "email": "ada@example.com",
                "timezone": "Europe/Berlin",
            },
            {"role": "mentor", "name": "Grace", "email": "grace@example.com"},
        ],
    }
)
STEADY_RATE = 200.0
CPU_TARGETS_MS = {"goals": 1.0, "sessions": 0.6, "notifications": 1.2}


async def subscribe(
    stack: RunningStack,
    receiver: ReceiverProcess,
    event_types: list[str],
    *,
    path: str = "/hook",
) -> str:
    """Register a webhook endpoint at ``path`` on the receiver; trusts its secret there."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{stack.notifications}/v1/endpoints",
            json={"url": f"{receiver.url}{path}", "event_types": event_types},
            headers=stack.headers(),
        )
        response.raise_for_status()
    body = response.json()
    await asyncio.to_thread(receiver.trust, body["secret"], path)
    return str(body["id"])


def goal_sender(stack: RunningStack, pool: ClientPool) -> Any:
    headers = {**stack.headers(), "content-type": "application/json"}
    url = f"{stack.goals}/v1/goals"

    async def send(key: str) -> None:
        response = await pool.next().post(
            url, content=GOAL, headers={**headers, "x-correlation-id": key}
        )
        if response.status_code != 201:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")

    return send


async def scenario(
    stack: RunningStack,
    receiver: ReceiverProcess,
    *,
    quick: bool,
    profile: bool = False,
    cpu_only: bool = False,
) -> dict[str, Any]:
    await subscribe(stack, receiver, ["goal.created"])
    meter = CpuMeter(
        {
            **{
                service: stack.pid_of(service) for service in ("goals", "sessions", "notifications")
            },
            "broker": stack.child_pid("tansu"),
            "receiver": receiver.pid,
            "generator": os.getpid(),
        }
    )
    services = {name: meter.pids[name] for name in ("goals", "sessions", "notifications")}
    async with ClientPool(clients=16, connections_per_client=4) as pool:
        send = goal_sender(stack, pool)
        with profiling(profile, "e2e", services):
            return await throughput_phases(
                send,
                receiver,
                quick=quick,
                steady_rate=STEADY_RATE,
                steady_seconds=20 if quick else 60,
                meter=meter,
                cpu_only=cpu_only,
            )


def main() -> None:
    options = parser(__doc__)
    options.add_argument(
        "--tracing", action="store_true", help="OpenTelemetry on, 100%% sampled, to an OTLP sink"
    )
    args = options.parse_args()
    install_loop()
    started = time.time()
    sink = OtlpSink() if args.tracing else None
    if sink is not None:
        sink.start()
    try:
        with stack_with_receiver(
            postgres=args.postgres, extra_env=sink.env() if sink is not None else None
        ) as (stack, receiver):
            figures = asyncio.run(
                scenario(
                    stack,
                    receiver,
                    quick=args.quick,
                    profile=args.profile,
                    cpu_only=args.cpu_only,
                )
            )
            if args.cpu_only:
                return
            figures["rss_mb"] = {s: stack.rss_mb(s) for s in ("goals", "sessions", "notifications")}
        if sink is not None:
            figures["otlp"] = sink.stats()
    finally:
        if sink is not None:
            sink.stop()
    steady: PhaseResult = figures.pop("_steady")
    low: PhaseResult = figures.pop("_low")
    cpu: dict[str, float] = figures.pop("_cpu").cpu_ms_per_event
    sustained = figures["max"]["sustained_rate"]
    confirmed = figures["max"]["confirmed"] or {}
    results.write(
        "e2e-tracing" if args.tracing else "e2e",
        figures,
        headlines=[
            headline(
                "service CPU per event at 100/s (goals + sessions + notifications)",
                cpu["services"],
                "ms",
                "<= 3",
                cpu["services"] <= 3,
            ),
            *(
                headline(
                    f"  {name} CPU per event",
                    cpu[name],
                    "ms",
                    f"<= {target:g}",
                    cpu[name] <= target,
                )
                for name, target in CPU_TARGETS_MS.items()
            ),
            *(
                headline(f"  {name} CPU per event", cpu[name], "ms", "", None)
                for name in ("broker", "generator", "receiver")
            ),
            headline("at 20/s p50", low.latency["p50_ms"], "ms", "", None),
            headline("at 20/s p99", low.latency["p99_ms"], "ms", "", None),
            headline(
                "steady 200/s p50",
                steady.latency["p50_ms"],
                "ms",
                "<= 25",
                steady.latency["p50_ms"] <= 25,
            ),
            headline(
                "steady 200/s p99",
                steady.latency["p99_ms"],
                "ms",
                "<= 150",
                steady.latency["p99_ms"] <= 150,
            ),
            headline(
                "steady 200/s ledger",
                "balanced" if steady.healthy else "NOT clean",
                "",
                "balanced",
                steady.healthy,
            ),
            headline(
                "highest rate held 60 s, p99 < 1 s",
                sustained,
                "deliveries/s",
                ">= 1000",
                sustained >= 1000,
            ),
            headline(
                "  p99 at that rate",
                confirmed.get("latency", {}).get("p99_ms", 0.0),
                "ms",
                "< 1000",
                None,
            ),
        ],
        database=database_name(args.postgres),
        void=not steady.ledger["balanced"],
        notes="POST /v1/goals -> outbox -> Kafka -> notifications intake -> dispatcher -> webhook"
        + (", tracing on (100% sampled, OTLP/HTTP to a sink)" if args.tracing else ""),
        started_at=started,
    )


if __name__ == "__main__":
    main()
