"""Floor: the end-to-end path with nothing of Followthrough in it.

aiokafka producer -> Tansu -> aiokafka consumer (its own process, commit after
each batch) -> httpx POST, signed with the standardwebhooks library, to the
same verifying receiver the end-to-end scenario uses. What Followthrough adds
(HTTP API, database, outbox, intake, durable queue) is measured as a ratio of
this.

Measured the way the end-to-end scenario is (bench/e2e.py): a warm-up, a
steady 200 events/s (20 s: its latency is for comparison), and the highest
rate held for 60 s with p99 under 1 s, which the end-to-end throughput is
reported as a ratio of.

Each phase runs on a topic of its own, with a consumer process of its own
that has joined before the first send: Tansu's memory-only log costs more the
more records a partition holds (``python -m bench.broker`` measures it), and
without this the floor's later phases measured the records its earlier ones
left behind (no rate held 60 s after a 1,000/s probe). The end-to-end
scenario cannot move its services to new topics between phases: its topics
keep growing through the run, which only counts against it.

    python -m bench.floor [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from standardwebhooks.webhooks import Webhook

from bench.e2e import STEADY_RATE
from bench.lib import results
from bench.lib.options import database_name, install_loop, parser
from bench.lib.phase import PhaseResult, throughput_phases
from bench.lib.receiver import ReceiverProcess
from bench.lib.results import headline
from shared.devstack.broker import TansuBroker

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PAYLOAD_PAD = "x" * 1200  # about the size of a real CloudEvent with its goal snapshot


def _consume(
    bootstrap: str, topic: str, url: str, secret: str, concurrency: int, ready: Any
) -> None:
    async def main() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"floor-{topic}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            fetch_max_wait_ms=5,
            session_timeout_ms=30_000,
            max_poll_interval_ms=600_000,
        )
        await consumer.start()
        signer = Webhook(secret)
        # One client per few connections: a single httpx client degrades badly
        # under many concurrent requests (encode/httpx#3215); a small pool of
        # clients is the sensible way to use it. A request takes a free
        # connection slot first, so none ever queues (and times out) inside httpx.
        per_client = 4
        free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for _ in range(max(1, concurrency // per_client)):
            client = httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=per_client, max_keepalive_connections=per_client
                )
            )
            for _ in range(per_client):
                free.put_nowait(client)

        async def post(value: bytes, msg_id: str) -> None:
            """At least once, like the real thing: retried until the receiver took it."""
            client = await free.get()
            try:
                while True:
                    now = datetime.now(UTC)
                    headers = {
                        "content-type": "application/json",
                        "webhook-id": msg_id,
                        "webhook-timestamp": str(int(now.timestamp())),
                        "webhook-signature": signer.sign(msg_id, now, value.decode()),
                    }
                    try:
                        response = await client.post(url, content=value, headers=headers)
                        if response.status_code == 200:
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.05)
            finally:
                free.put_nowait(client)

        while True:
            batches = await consumer.getmany(timeout_ms=100)
            if consumer.assignment():
                ready.set()
            tasks = [
                asyncio.create_task(post(record.value, f"{record.partition}-{record.offset}"))
                for records in batches.values()
                for record in records
            ]
            if tasks:
                await asyncio.gather(*tasks)
                try:
                    await consumer.commit()
                except KafkaError:
                    # Evicted while the batch was in flight (a starved heartbeat under
                    # overload): the group rebalances and the records come again.
                    await asyncio.sleep(0.1)

    asyncio.run(main())


class FloorPath:
    """The floor's topic and consumer process, both new for every phase."""

    def __init__(self, bootstrap: str, receiver: ReceiverProcess) -> None:
        self._bootstrap = bootstrap
        self._url = f"{receiver.url}/hook"
        self._context = multiprocessing.get_context("spawn")
        self._consumer: Any = None
        self.topic = ""

    async def begin(self, phase: str) -> None:
        """A fresh topic, and a consumer that holds its partitions before anything is sent."""
        self.stop()
        topic = f"floor-{phase}"
        await _create_topic(self._bootstrap, topic)
        ready = self._context.Event()
        self._consumer = self._context.Process(
            target=_consume,
            args=(self._bootstrap, topic, self._url, SECRET, 64, ready),
            daemon=True,
        )
        self._consumer.start()
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError(f"the floor's consumer for {topic} never got its partitions")
        self.topic = topic

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.terminate()
            self._consumer.join(10)
            self._consumer = None


async def scenario(bootstrap: str, receiver: ReceiverProcess, *, quick: bool) -> dict[str, Any]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2
    )
    await producer.start()
    path = FloorPath(bootstrap, receiver)
    try:

        async def send(key: str) -> None:
            value = orjson.dumps(
                {"correlationid": key, "id": str(uuid.uuid4()), "pad": PAYLOAD_PAD}
            )
            await producer.send_and_wait(path.topic, value, key=key.encode())

        return await throughput_phases(
            send,
            receiver,
            quick=quick,
            steady_rate=STEADY_RATE,
            steady_seconds=10 if quick else 20,
            before_phase=path.begin,
        )
    finally:
        path.stop()
        await producer.stop()


def run(*, quick: bool) -> dict[str, Any]:
    broker = TansuBroker()
    broker.start()
    receiver = ReceiverProcess([SECRET])
    receiver.start()
    try:
        return asyncio.run(scenario(broker.bootstrap_servers, receiver, quick=quick))
    finally:
        receiver.stop()
        broker.stop()


async def _create_topic(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
    finally:
        await admin.close()


def main() -> None:
    args = parser(__doc__).parse_args()
    install_loop()
    started = time.time()
    figures = run(quick=args.quick)
    steady: PhaseResult = figures.pop("_steady")
    low: PhaseResult = figures.pop("_low")
    sustained = figures["max"]["sustained_rate"]
    results.write(
        "floor",
        figures,
        headlines=[
            headline("at 20/s p50", low.latency["p50_ms"], "ms"),
            headline("at 20/s p99", low.latency["p99_ms"], "ms"),
            headline("steady 200/s p50", steady.latency["p50_ms"], "ms"),
            headline("steady 200/s p99", steady.latency["p99_ms"], "ms"),
            headline("highest rate held 60 s, p99 < 1 s", sustained, "deliveries/s"),
        ],
        database=database_name(args.postgres),  # of the run: the floor itself has none
        void=not steady.ledger["balanced"],
        notes="aiokafka produce -> Tansu -> aiokafka consume -> httpx POST, nothing of ours; "
        "a fresh topic and consumer per phase",
        started_at=started,
    )


if __name__ == "__main__":
    main()
