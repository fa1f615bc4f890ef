"""Poison messages go to ``<topic>.dlq`` whole, with the reason, and the next message is handled."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from shared.db.database import Database
from shared.deadletters.store import (
    DeadLetterEntry,
    DeadLetterRepository,
    DeadLetterStore,
    stored_record,
)
from tests.shared.kafka.conftest import Workbench
from tests.support.consumers import RecordingHandler, metric, running
from tests.support.events import endpoint_disabled
from tests.support.kafka import produce, read_records
from tests.support.waiting import eventually

HEADERS = [("traceparent", b"00-abc-01"), ("content-type", b"application/cloudevents+json")]


def good(number: int) -> bytes:
    return endpoint_disabled(number).to_json()


def unknown_type() -> bytes:
    document = json.loads(good(90))
    document["type"] = "goal.exploded"
    return json.dumps(document).encode()


def invalid_data() -> bytes:
    document = json.loads(good(91))
    document["data"]["reason"] = "bored"
    return json.dumps(document).encode()


def headers_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, bytes]:
    return dict(record.headers)


async def test_each_kind_of_poison_is_dead_lettered_and_the_next_message_still_handled(
    bench: Workbench,
) -> None:
    poison = {
        "malformed_json": b'{"specversion": "1.0", "id": ',
        "unknown_event_type": unknown_type(),
        "invalid_event_data": invalid_data(),
        "oversize": good(92) + b" " * 4096,
        "handler_failed": good(93),
    }
    sequence: list[bytes] = [good(1)]
    for number, value in enumerate(poison.values(), start=2):
        sequence += [value, good(number)]
    await produce(bench.bootstrap, bench.topic, sequence, key=b"goal-1", headers=HEADERS)

    handler = RecordingHandler(broken={"evt-0093"})
    expected = [f"evt-{n:04d}" for n in range(1, 7)]
    async with running(bench.runner(handler, max_event_bytes=4096)):
        await handler.wait_handled(expected)
        letters = await read_records(
            bench.bootstrap, bench.dlq, until=lambda records: len(records) >= len(poison)
        )

    assert handler.handled == expected  # every good message, in order, once
    assert [headers_of(r)["dlq-reason"].decode() for r in letters] == list(poison)
    for letter, (reason, original) in zip(letters, poison.items(), strict=True):
        headers = headers_of(letter)
        assert letter.value == original, reason
        assert letter.key == b"goal-1"
        assert headers["traceparent"] == b"00-abc-01"
        assert headers["content-type"] == b"application/cloudevents+json"
        assert headers["dlq-source-topic"] == bench.topic.encode()
        assert headers["dlq-source-partition"] == b"0"
        assert int(headers["dlq-source-offset"]) == sequence.index(original)
        assert headers["dlq-consumer-group"] == f"{bench.topic}.group".encode()
        assert datetime.fromisoformat(headers["dlq-failed-at"].decode()).tzinfo is not None
        assert headers["dlq-error"]
        labels = {"service": bench.service, "topic": bench.topic, "reason": reason}
        assert metric("followthrough_dead_lettered_total", **labels) == 1
    assert b"evt-0093" not in headers_of(letters[0])["dlq-error"]
    assert b"oversize" not in headers_of(letters[3])["dlq-error"]
    assert b"4096" in headers_of(letters[3])["dlq-error"]
    # A handler failure is retried (2 retries here) before it is given up on.
    assert handler.attempts_alone("evt-0093") == 3


async def test_permanent_handler_error_is_dead_lettered_without_retries(bench: Workbench) -> None:
    await produce(bench.bootstrap, bench.topic, [good(1), good(2), good(3)])
    handler = RecordingHandler(permanent={"evt-0002"})
    async with running(bench.runner(handler)):
        await handler.wait_handled(["evt-0001", "evt-0003"])
        (letter,) = await read_records(bench.bootstrap, bench.dlq, until=lambda rs: len(rs) >= 1)

    assert letter.value == good(2)
    assert headers_of(letter)["dlq-reason"] == b"handler_failed"
    assert b"PermanentHandlerError" in headers_of(letter)["dlq-error"]
    assert handler.attempts_alone("evt-0002") == 1
    assert "evt-0002" not in handler.handled


async def test_dead_letters_are_kept_in_the_service_table_once_per_source_record(
    bench: Workbench, database: Database
) -> None:
    store = DeadLetterStore(database)
    await produce(
        bench.bootstrap,
        bench.topic,
        [good(1), b"{not json", good(2)],
        key=b"goal-1",
        headers=HEADERS,
    )
    handler = RecordingHandler(permanent={"evt-0002"})
    async with running(bench.runner(handler, dead_letters=store)):
        await handler.wait_handled(["evt-0001"])

        async def both_kept() -> bool:
            async with database.reader() as session:
                rows = await DeadLetterRepository(session).page(
                    tenant_id=None, status=None, before=None, limit=10
                )
            return len(rows) == 2

        await eventually(both_kept, what="two dead letters in the table")

    async with database.reader() as session:
        rows = await DeadLetterRepository(session).page(
            tenant_id=None, status=None, before=None, limit=10
        )
    by_offset = {row.source_offset: row for row in rows}
    malformed, failed = by_offset[1], by_offset[2]
    assert (malformed.reason, malformed.tenant_id, malformed.event_id) == (
        "malformed_json",
        None,
        None,
    )
    assert (failed.reason, failed.tenant_id, failed.event_id, failed.event_type) == (
        "handler_failed",
        "acme",
        "evt-0002",
        "endpoint.disabled",
    )
    assert "PermanentHandlerError" in failed.error
    assert failed.consumer_group == f"{bench.topic}.group"
    assert failed.status == "dead"
    async with database.reader() as session:
        whole = await DeadLetterRepository(session).get(failed.id, tenant_id=None)
    assert whole is not None
    record = stored_record(whole)
    assert (record.topic, record.key, record.value) == (bench.topic, b"goal-1", good(2))
    assert record.headers == HEADERS

    # Dead-lettered again after a crash before the commit: still one row for that offset.
    entry = DeadLetterEntry(
        consumer_group=failed.consumer_group,
        topic=bench.topic,
        partition=0,
        offset=2,
        reason="handler_failed",
        error="again",
        key=b"goal-1",
        value=good(2),
        headers=[*HEADERS, ("dlq-reason", b"handler_failed")],
        dead_lettered_at=datetime.now(UTC),
    )
    await store.record(entry)
    async with database.reader() as session:
        again = await DeadLetterRepository(session).page(
            tenant_id=None, status=None, before=None, limit=10
        )
    assert sorted(row.id for row in again) == sorted(row.id for row in rows)
