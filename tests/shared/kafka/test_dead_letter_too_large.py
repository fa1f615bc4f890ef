"""A record too large to send again still leaves the way clear: dead-lettered without its value.

Normally the dead letter is the record whole (the producer's request limit is
above the consumer's event limit). Where the producer or the broker cannot
take it as it is, the runner sends the reason and the coordinates without
the value (``dlq-value-omitted`` says how large it was) instead of retrying a
send that can never succeed, which would stall the consumer for good.
"""

from __future__ import annotations

import pytest

from shared.kafka import producer as producer_module
from tests.shared.kafka.conftest import Workbench
from tests.shared.kafka.test_consumer_dead_letters import good, headers_of
from tests.support.consumers import RecordingHandler, running
from tests.support.kafka import produce, read_records


async def test_a_record_too_large_for_the_dead_letter_topic_is_sent_without_its_value(
    bench: Workbench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(producer_module, "MAX_REQUEST_BYTES", 20_000)
    huge = b'{"padding": "' + b"x" * 50_000 + b'"}'
    await produce(bench.bootstrap, bench.topic, [huge, good(1)])
    handler = RecordingHandler()
    async with running(bench.runner(handler, max_event_bytes=10_000)):
        await handler.wait_handled(["evt-0001"])  # the consumer went past it
        (letter,) = await read_records(bench.bootstrap, bench.dlq, until=lambda rs: len(rs) >= 1)
    headers = headers_of(letter)
    assert headers["dlq-reason"] == b"oversize"
    assert headers["dlq-value-omitted"] == str(len(huge)).encode()
    assert headers["dlq-source-offset"] == b"0"
    assert letter.value in (b"", None)
