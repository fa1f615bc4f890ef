"""One measured phase: an open-loop load, a ledger, the receiver's account, the figures.

Every scenario that ends in webhooks runs its load through :func:`run_phase`:
the generator calls ``send(key)`` at each scheduled moment (``key`` is the
ledger key, carried end to end as the event's correlation id), the phase then
waits for the receiver to have every accepted key or for the drain time to
run out, and the ledger accounts for each published key. Latency runs from
the scheduled moment, so neither a slow answer nor a stalled generator can
hide it. The load average is recorded with each phase: a figure taken on a
busy machine says so.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.lib.cpu import CpuMeter
from bench.lib.generator import open_loop
from bench.lib.ledger import Ledger
from bench.lib.receiver import ReceiverProcess
from bench.lib.stats import summary_ms

Send = Callable[[str], Awaitable[None]]
"""Publish the event for ledger key ``key``; raise to count it as rejected."""


CPU_PHASE_RATE = 100.0
"""The rate CPU per event is measured at: well below saturation, so it counts work, not queueing."""
LOW_RATE = 20.0
"""A light load: its latency is what polls, waits and lingers cost, with no queueing at all."""


def load_average() -> float:
    """The 1-minute load average (2 cores: above 2 means something else competes)."""
    return round(os.getloadavg()[0], 2)


@dataclass
class PhaseResult:
    name: str
    rate: float
    duration: float
    ledger: dict[str, int | bool]
    latency: dict[str, float]
    accept_latency: dict[str, float]
    unverified: int
    delivered_per_second: float
    load_before: float
    load_after: float
    ledger_object: Ledger
    settled_after: float
    """Seconds the phase waited for the previous one's deliveries to stop arriving."""
    cpu_ms_per_event: dict[str, float] | None = None
    """Per process, from the first send until the last delivery was counted (with a meter)."""

    @property
    def healthy(self) -> bool:
        """Balanced, nothing missing or rejected, nothing unverified."""
        return (
            bool(self.ledger["balanced"])
            and self.ledger["missing"] == 0
            and self.ledger["rejected"] == 0
            and self.ledger["in_flight"] == 0
            and self.unverified == 0
        )

    def figures(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "duration_s": self.duration,
            "ledger": self.ledger,
            "latency": self.latency,
            "accept_latency": self.accept_latency,
            "unverified": self.unverified,
            "delivered_per_second": self.delivered_per_second,
            "load_average": [self.load_before, self.load_after],
            "settled_after_s": self.settled_after,
            **({"cpu_ms_per_event": self.cpu_ms_per_event} if self.cpu_ms_per_event else {}),
        }


async def settle(receiver: ReceiverProcess, *, quiet: float = 1.0, limit: float = 180.0) -> float:
    """Wait until no delivery has arrived for ``quiet`` seconds; returns the seconds waited.

    A phase that overloaded the pipeline leaves a backlog behind it; the next
    phase must not start until it has drained, or its events queue behind the
    backlog and its figures measure the previous phase.
    """
    started = time.time()
    count = await asyncio.to_thread(receiver.count, "")
    while time.time() - started < limit:
        await asyncio.sleep(quiet)
        now = await asyncio.to_thread(receiver.count, "")
        if now == count:
            break
        count = now
    return round(time.time() - started - quiet, 1)


async def run_phase(
    name: str,
    *,
    rate: float,
    duration: float,
    send: Send,
    receiver: ReceiverProcess,
    drain: float = 30.0,
    expected_per_key: int = 1,
    max_in_flight: int = 2000,
    meter: CpuMeter | None = None,
) -> PhaseResult:
    """Send ``rate`` events a second for ``duration`` seconds and account for every one.

    ``expected_per_key`` is how many deliveries each key should produce (fan-out);
    the ledger then counts a key delivered at its last delivery.
    """
    ledger = Ledger(expected_per_key=expected_per_key)
    prefix = f"{name}-"
    settled = await settle(receiver)
    load_before = load_average()

    async def one(index: int, scheduled: float) -> None:
        key = f"{prefix}{index}"
        ledger.publish(key, scheduled)
        try:
            await send(key)
        except Exception as error:
            ledger.reject(key, repr(error)[:200])
        else:
            ledger.accept(key, time.time())

    cpu_before = meter.snapshot() if meter is not None else None
    started = time.time()
    await open_loop(rate=rate, duration=duration, send=one, max_in_flight=max_in_flight)
    wanted = len(ledger.accepted) * expected_per_key
    deadline = time.time() + drain
    while time.time() < deadline:
        if await asyncio.to_thread(receiver.count, prefix) >= wanted:
            break
        await asyncio.sleep(0.2)
    cpu = None
    if meter is not None and cpu_before is not None:
        delivered = await asyncio.to_thread(receiver.count, prefix)
        cpu = meter.per_event_ms(cpu_before, meter.snapshot(), delivered)
    deliveries, unverified = await asyncio.to_thread(receiver.deliveries, prefix)
    for item in deliveries:
        ledger.deliver(item.key, item.at, item.path)
    latencies = ledger.latencies()
    last = max((item.at for item in deliveries), default=started)
    return PhaseResult(
        name=name,
        rate=rate,
        duration=duration,
        ledger=ledger.account(),
        latency=summary_ms(latencies),
        accept_latency=summary_ms(ledger.accept_latencies()),
        unverified=unverified,
        delivered_per_second=round(len(ledger.delivered_at) / max(last - started, 1e-9), 1),
        load_before=load_before,
        load_after=load_average(),
        ledger_object=ledger,
        settled_after=settled,
        cpu_ms_per_event=cpu,
    )


async def highest_sustained_rate(
    run: Callable[[str, float, float], Awaitable[PhaseResult]],
    *,
    start: float,
    probe_seconds: float,
    confirm_seconds: float,
    p99_limit_ms: float = 1000.0,
    step: float = 1.5,
    ceiling: float = 3000.0,
    floor: float = 20.0,
) -> dict[str, Any]:
    """The highest rate that holds ``confirm_seconds`` with p99 under the limit, ledger clean.

    Short probes from ``start``: up by ``step`` while they pass, or down by it
    until one passes. One step below the best passing rate is then run for the
    full ``confirm_seconds`` and, if it holds, the best rate itself; if it does
    not, one step lower, and once more (three confirmations at most: each costs a
    minute). A rate can pass a probe and fail its minute for a reason of its own:
    on Tansu, 60 s at 1,000/s leaves 60,000 records in the topic, and each record
    costs the broker more the longer its topic (bench/broker.py).
    """

    def passes(result: PhaseResult) -> bool:
        return result.healthy and result.latency["p99_ms"] <= p99_limit_ms

    probes: list[dict[str, Any]] = []

    async def probe(rate: float) -> bool:
        result = await run(f"probe{len(probes)}", rate, probe_seconds)
        ok = passes(result)
        probes.append({**result.figures(), "passed": ok})
        print(f"probe {rate:.0f}/s: p99 {result.latency['p99_ms']} ms, {result.ledger}", flush=True)
        return ok

    rate = round(start)
    best: float | None = None
    if await probe(rate):
        best = rate
        while rate * step <= ceiling:
            rate = round(rate * step)
            if not await probe(rate):
                break
            best = rate
    else:
        while rate / step >= floor:
            rate = round(rate / step)
            if await probe(rate):
                best = rate
                break
    confirmed: dict[str, Any] | None = None
    # The safer rate first: one step below the best probe; if it holds, the best one too;
    # if not, one step lower still. Probes are short, and a rate that passes for 10 s can
    # still build a backlog over 60 s.
    candidate: float | None = None
    if best:
        candidate = round(best / step) if best / step >= floor else best
    tried: set[float] = set()
    stepped_down = False
    while candidate and candidate >= floor and candidate not in tried and len(tried) < 3:
        tried.add(candidate)
        result = await run(f"confirm{len(tried) - 1}", candidate, confirm_seconds)
        figures = {**result.figures(), "passed": passes(result)}
        latency = result.latency["p99_ms"]
        print(f"confirm {candidate:.0f}/s: p99 {latency} ms, {result.ledger}", flush=True)
        if passes(result):
            confirmed = figures
            # Up to the best probe only from the first step below it: once a minute has
            # failed, the rate below it that held is the answer.
            climb = not stepped_down and confirmed["rate"] < (best or 0)
            candidate = best if climb else None
        else:
            probes.append(figures)
            stepped_down = True
            candidate = None if confirmed else round(candidate / step)
    return {
        "sustained_rate": confirmed["rate"] if confirmed else 0.0,
        "confirmed": confirmed,
        "probes": probes,
    }


async def throughput_phases(
    send: Send,
    receiver: ReceiverProcess,
    *,
    quick: bool,
    steady_rate: float,
    steady_seconds: float,
    meter: CpuMeter | None = None,
    cpu_only: bool = False,
    before_phase: Callable[[str], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """A warm-up, a steady rate, then the highest rate held (as e2e and the floor measure).

    ``cpu_only`` stops after the CPU phase: the quick loop for judging one change.
    ``before_phase(name)`` runs once the previous phase's deliveries have settled
    (the floor moves to a fresh topic there: see bench/floor.py).

    With a ``meter``, a steady 100/s phase after the warm-up measures CPU per
    event per process. The steady phase's :class:`PhaseResult` comes back under
    ``_steady`` (and the CPU phase's under ``_cpu``), for headlines.
    """

    async def run(name: str, rate: float, duration: float) -> PhaseResult:
        if before_phase is not None:
            await settle(receiver)
            await before_phase(name)
        return await run_phase(
            name, rate=rate, duration=duration, send=send, receiver=receiver, drain=30
        )

    warm = await run("warm", 50, 4 if quick else 10)
    print(f"warm-up: {warm.ledger} p99 {warm.latency['p99_ms']} ms", flush=True)
    cpu = None
    if meter is not None:
        if before_phase is not None:
            await settle(receiver)
            await before_phase("cpu")
        cpu = await run_phase(
            "cpu",
            rate=CPU_PHASE_RATE,
            duration=10 if quick else 30,
            send=send,
            receiver=receiver,
            drain=30,
            meter=meter,
        )
        print(f"cpu at {CPU_PHASE_RATE:g}/s: {cpu.cpu_ms_per_event} ms per event", flush=True)
        if cpu_only:
            return {"warm_up": warm.figures(), "cpu": cpu.figures(), "_cpu": cpu}
    low = await run("low", LOW_RATE, 10 if quick else 30)
    print(f"low {LOW_RATE:g}/s: {low.ledger} {low.latency}", flush=True)
    steady = await run("steady", steady_rate, steady_seconds)
    print(f"steady: {steady.ledger} {steady.latency}", flush=True)
    ladder = await highest_sustained_rate(
        run,
        start=steady_rate,
        probe_seconds=5 if quick else 8,
        confirm_seconds=15 if quick else 60,
    )
    figures: dict[str, Any] = {
        "warm_up": warm.figures(),
        "low_rate": low.figures(),
        "steady": steady.figures(),
        "max": ladder,
        "_low": low,
        "_steady": steady,
    }
    if cpu is not None:
        figures["cpu"] = cpu.figures()
        figures["_cpu"] = cpu
    return figures
