"""Floor: the end-to-end path with nothing of Followthrough in it.

aiokafka producer -> Tansu -> aiokafka consumer (its own process, commit after
each batch) -> httpx POST, signed with the standardwebhooks library, to the
same verifying receiver the end-to-end scenario uses. What Followthrough adds
(HTTP API, database, outbox, intake, durable queue) is measured as a ratio of
this.

    python -m bench.floor [--count 20000] [--rate 200 --duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from standardwebhooks.webhooks import Webhook

from bench.lib import results
from bench.lib.generator import open_loop
from bench.lib.ledger import Ledger
from bench.lib.receiver import ReceiverProcess
from bench.lib.stats import summary_ms
from shared.devstack.broker import TansuBroker

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
PAYLOAD_PAD = "x" * 1200  # about the size of a real CloudEvent with its goal snapshot


def _consume(bootstrap: str, topic: str, url: str, secret: str, concurrency: int) -> None:
    async def main() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id="floor",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            fetch_max_wait_ms=5,
            session_timeout_ms=10_000,
        )
        await consumer.start()
        signer = Webhook(secret)
        # One client per few connections: a single httpx client degrades badly
        # under many concurrent requests (encode/httpx#3215); a small pool of
        # clients is the sensible way to use it.
        per_client = 4
        clients = [
            httpx.AsyncClient(
                limits=httpx.Limits(
                    max_connections=per_client, max_keepalive_connections=per_client
                )
            )
            for _ in range(max(1, concurrency // per_client))
        ]
        slots = asyncio.Semaphore(concurrency)

        async def post(value: bytes, msg_id: str, client: httpx.AsyncClient) -> None:
            async with slots:
                now = datetime.now(UTC)
                headers = {
                    "content-type": "application/json",
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": signer.sign(msg_id, now, value.decode()),
                }
                for _ in range(5):
                    try:
                        response = await client.post(url, content=value, headers=headers)
                        if response.status_code == 200:
                            return
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)

        while True:
            batches = await consumer.getmany(timeout_ms=100)
            tasks = [
                asyncio.create_task(
                    post(
                        record.value,
                        f"{record.partition}-{record.offset}",
                        clients[record.offset % len(clients)],
                    )
                )
                for records in batches.values()
                for record in records
            ]
            if tasks:
                await asyncio.gather(*tasks)
                await consumer.commit()

    asyncio.run(main())


async def _produce(
    bootstrap: str, topic: str, ledger: Ledger, *, rate: float | None, count: int, duration: float
) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=2
    )
    await producer.start()
    started = time.time()
    try:

        async def send(index: int, scheduled: float) -> None:
            key = f"floor-{index}"
            ledger.publish(key, scheduled)
            value = orjson.dumps(
                {"correlationid": key, "id": str(uuid.uuid4()), "pad": PAYLOAD_PAD}
            )
            try:
                await producer.send_and_wait(topic, value, key=str(index % 997).encode())
                ledger.accept(key)
            except Exception as error:
                ledger.reject(key, repr(error))

        if rate is not None:
            await open_loop(rate=rate, duration=duration, send=send)
        else:
            await open_loop(rate=1e9, duration=count / 1e9, send=send, max_in_flight=2000)
    finally:
        await producer.stop()
    return started


def run(
    *, count: int, rate: float | None, duration: float, drain: float = 30.0
) -> dict[str, object]:
    broker = TansuBroker()
    broker.start()
    receiver = ReceiverProcess([SECRET])
    receiver.start()
    topic = "floor"
    consumer = multiprocessing.get_context("spawn").Process(
        target=_consume,
        args=(broker.bootstrap_servers, topic, f"{receiver.url}/hook", SECRET, 64),
        daemon=True,
    )
    try:
        asyncio.run(_create_topic(broker.bootstrap_servers, topic))
        consumer.start()
        ledger = Ledger()
        started = asyncio.run(
            _produce(
                broker.bootstrap_servers, topic, ledger, rate=rate, count=count, duration=duration
            )
        )
        deadline = time.time() + drain
        while time.time() < deadline:
            deliveries, _ = receiver.deliveries()
            if len(deliveries) >= len(ledger.accepted):
                break
            time.sleep(0.25)
        deliveries, unverified = receiver.deliveries()
        for item in deliveries:
            ledger.deliver(item.key, item.at)
        account = ledger.account()
        last = max((item.at for item in deliveries), default=started)
        figures: dict[str, object] = {"ledger": account, "unverified": unverified}
        figures["latency"] = summary_ms(ledger.latencies())
        figures["deliveries_per_second"] = round(len(deliveries) / max(last - started, 1e-9), 1)
        return figures
    finally:
        consumer.terminate()
        consumer.join(10)
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="messages for the throughput run")
    parser.add_argument("--rate", type=float, default=None, help="open-loop rate (events/s)")
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    figures = run(count=args.count, rate=args.rate, duration=args.duration)
    results.write(
        "floor" if args.rate is None else f"floor_rate_{int(args.rate)}",
        figures,
        targets={},
        notes="aiokafka produce -> consume -> httpx POST, nothing of ours in the path",
    )


if __name__ == "__main__":
    main()
