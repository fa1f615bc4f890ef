"""The broker unreachable for 30 seconds while the services keep taking requests.

The test runs its own Tansu broker behind a TCP proxy that the broker
advertises as its address, so every client connection goes through the
proxy; the outage is the proxy cutting every connection and refusing new
ones, which is what a stopped broker looks like to a client. Throughout it
goals keeps creating goals and sessions keeps recording check-ins: every
request succeeds, because each change waits in its service's outbox. Once
the broker is reachable again everything accepted during the outage is
published and delivered.

Why not stop Tansu itself: it keeps everything in memory, so a restarted
Tansu is a new, empty cluster on the old address (no topics, no committed
offsets, topics re-created with its own partition count). That is not what
an outage of Kafka looks like, and it loses data a Kafka outage keeps: a
producer with the old metadata writes to partitions the re-created topic
does not have, and a consumer's old position can point past the new, shorter
log. The one thing we learnt from it, a commit the broker keeps refusing,
is handled by the consumer runner and tested in tests/shared/kafka.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from tests.reliability.conftest import RecordResult
from tests.reliability.harness import (
    Ledger,
    Stack,
    await_ledger,
    goal_event_ids,
    register_endpoint,
    stack_environment,
    wait_for,
)
from tests.services.goals.fixtures import goal_body
from tests.support.faults import TcpProxy
from tests.support.kafka import read_events
from tests.support.receiver import running_receiver

pytestmark = pytest.mark.reliability

OUTAGE_SECONDS = 30.0


async def test_everything_accepted_during_a_broker_outage_is_delivered(
    keys_file: Path,
    topic_prefix: str,
    tmp_path: Path,
    auth_headers: Callable[..., dict[str, str]],
    record_result: RecordResult,
) -> None:
    proxy = TcpProxy("127.0.0.1", free_port())
    broker = TansuBroker(
        port=proxy.target_port, advertised_port=proxy.port, log_file=tmp_path / "broker.log"
    )
    broker.start()
    await proxy.start()
    bootstrap = f"127.0.0.1:{proxy.port}"
    env = stack_environment(bootstrap, topic_prefix, keys_file, tmp_path / "data")
    stack = Stack(env=env, logs=tmp_path)
    try:
        async with (
            running_receiver() as receiver,
            httpx.AsyncClient(timeout=30, headers=auth_headers()) as http,
        ):
            await asyncio.gather(*(stack.start(n) for n in ("goals", "sessions", "notifications")))
            secret = await register_endpoint(http, stack, receiver)
            goals_url, sessions_url = stack.url("goals"), stack.url("sessions")

            async def create(ref: str) -> str:
                answer = await http.post(
                    f"{goals_url}/v1/goals", json=goal_body(external_ref=ref, milestones=[])
                )
                assert answer.status_code == 201, answer.text
                return str(answer.json()["id"])

            before = [await create(f"before-{n}") for n in range(3)]
            expected_before = await goal_event_ids(http, goals_url, before)
            await wait_for(
                lambda: Ledger.of(receiver, expected_before, secret).complete(),
                timeout=60,
                what="the first goals to be delivered",
            )

            await proxy.cut()
            during: list[str] = []
            checkins = 0
            outage_end = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < outage_end:
                during.append(await create(f"during-{len(during)}"))
                checked = await http.post(
                    f"{sessions_url}/v1/checkins", json={"goal_id": before[checkins % 3]}
                )
                assert checked.status_code == 201, checked.text
                checkins += 1
                await asyncio.sleep(0.5)
            assert (await http.get(f"{goals_url}/readyz")).status_code == 503

            await proxy.restore()
            restored = time.monotonic()
            published = await read_events(
                bootstrap,
                f"{topic_prefix}sessions",
                until=lambda events: sum(e.type == "checkin.completed" for e in events) >= checkins,
                timeout=120,
            )
            during_outage = await goal_event_ids(http, goals_url, during) | {
                event.id for event in published
            }
            expected = expected_before | during_outage
            await await_ledger(
                receiver,
                expected,
                secret,
                timeout=120,
                what="everything accepted during the outage to be delivered",
            )
            recovery = time.monotonic() - restored
            ledger = Ledger.of(receiver, expected, secret)
    finally:
        await stack.stop_all()
        await proxy.close()
        broker.stop()
    ledger.check()
    record_result(
        f"broker unreachable for {OUTAGE_SECONDS:g} s while goals and sessions keep accepting",
        events=len(during_outage),
        delivered=len(set(ledger.deliveries) & during_outage),
        lost=len(ledger.lost),
        duplicates=ledger.duplicates,
        recovery_s=recovery,
        notes=(
            f"{len(during)} goals and {checkins} check-ins accepted during the outage, every "
            "request answered 201; recovery is from the line's return to the last delivery"
        ),
    )
