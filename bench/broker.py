"""Broker: what one record costs Tansu as its topic grows, and on a fresh topic beside it.

The embedded broker keeps every record in memory. This scenario fills one
six-partition topic step by step (consuming as it goes, as the floor does),
and at each size sends 2,000 records of the floor's size at an open-loop
400/s through a producer and a consumer of its own (commit after each batch),
measuring produce-to-consume latency and the broker's CPU per record. A last
step repeats the measurement on a new, empty topic of the same broker.

It is the evidence behind two choices: the floor runs each phase on a topic
of its own (bench/floor.py), and the end-to-end figures say how many records
the stack's topics held by the end. Apache Kafka indexes its log, so none of
this applies to production.

    python -m bench.broker [--quick]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.floor import PAYLOAD_PAD, _create_topic
from bench.lib import results
from bench.lib.cpu import cpu_seconds
from bench.lib.options import database_name, install_loop, parser
from bench.lib.results import headline
from bench.lib.stats import summary_ms
from shared.devstack.broker import TansuBroker

RATE = 400.0
MEASURED = 2000
FILL_BATCH = 1000
SIZES = (0, 20_000, 50_000, 100_000, 200_000)
QUICK_SIZES = (0, 50_000, 100_000)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Lane:
    """A producer and a consumer on one topic, as the floor has."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2
        )
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"broker-{topic}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            fetch_max_wait_ms=5,
        )
        self.held = 0

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def fill_to(self, size: int) -> None:
        """Publish and consume records until the topic holds ``size``."""
        while self.held < size:
            sent = [
                await self.producer.send(self.topic, PAYLOAD_PAD.encode(), key=str(i).encode())
                for i in range(FILL_BATCH)
            ]
            await asyncio.gather(*sent)
            await self._consume(FILL_BATCH, on_record=lambda _key, _at: None)
            self.held += FILL_BATCH

    async def measure(self, broker_pid: int) -> dict[str, Any]:
        """2,000 records at an open-loop 400/s: latency from each scheduled send to its fetch."""
        scheduled: dict[bytes, float] = {}
        latencies: list[float] = []
        cpu_before = cpu_seconds(broker_pid)
        consumer = asyncio.create_task(
            self._consume(MEASURED, lambda key, at: latencies.append(at - scheduled[key]))
        )
        start = time.perf_counter()
        for index in range(MEASURED):
            due = start + index / RATE
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            key = f"m{self.held}-{index}".encode()
            scheduled[key] = due
            await self.producer.send(self.topic, PAYLOAD_PAD.encode(), key=key)
        await consumer
        self.held += MEASURED
        used = cpu_seconds(broker_pid) - cpu_before
        return {
            "latency": summary_ms(latencies),
            "broker_cpu_ms_per_record": round(1000 * used / MEASURED, 3),
            "broker_rss_mib": _rss_mib(broker_pid),
        }

    async def _consume(self, count: int, on_record: Any) -> None:
        got = 0
        while got < count:
            batches = await self.consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    on_record(record.key, now)
                    got += 1
            if batches:
                await self.consumer.commit()


async def scenario(broker: TansuBroker, *, quick: bool) -> dict[str, Any]:
    assert broker.pid is not None
    steps: list[dict[str, Any]] = []
    for topic in ("grown", "fresh"):
        await _create_topic(broker.bootstrap_servers, topic)
    grown = Lane(broker.bootstrap_servers, "grown")
    await grown.start()
    try:
        for size in QUICK_SIZES if quick else SIZES:
            await grown.fill_to(size)
            step = {"topic": "grown", "held": grown.held, **await grown.measure(broker.pid)}
            print(step, flush=True)
            steps.append(step)
    finally:
        await grown.stop()
    fresh = Lane(broker.bootstrap_servers, "fresh")
    await fresh.start()
    try:
        step = {"topic": "fresh", "held": 0, **await fresh.measure(broker.pid)}
        print(step, flush=True)
        steps.append(step)
    finally:
        await fresh.stop()
    return {"rate": RATE, "records_per_step": MEASURED, "steps": steps}


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    broker = TansuBroker()
    broker.start()
    try:
        figures = asyncio.run(scenario(broker, quick=args.quick))
    finally:
        broker.stop()
    empty, largest, fresh = figures["steps"][0], figures["steps"][-2], figures["steps"][-1]
    held = f"{largest['held'] // 1000}k"
    results.write(
        "broker",
        figures,
        headlines=[
            headline("Tansu CPU per record, empty topic", empty["broker_cpu_ms_per_record"], "ms"),
            headline(
                f"Tansu CPU per record, topic holding {held}",
                largest["broker_cpu_ms_per_record"],
                "ms",
            ),
            headline("p99 at 400/s, empty topic", empty["latency"]["p99_ms"], "ms"),
            headline(f"p99 at 400/s, topic holding {held}", largest["latency"]["p99_ms"], "ms"),
            headline(
                f"p99 at 400/s, fresh topic beside the {held}",
                fresh["latency"]["p99_ms"],
                "ms",
            ),
        ],
        database=database_name(args.postgres),  # of the run: the broker has none
        notes="Tansu (memory-only) alone: a producer and a consumer of the floor's kind",
        started_at=started,
    )


if __name__ == "__main__":
    main()
