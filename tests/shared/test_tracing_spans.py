"""The relay's and the consumer's spans, recorded by an SDK tracer of the test's own.

No global tracer provider is set (the process's other tests run without
tracing): the modules' ``tracer`` is pointed at a provider whose spans go to
memory, and ``shared.tracing.enabled`` is on for the test only. The whole
path through real processes is tests/e2e/test_tracing.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaTimeoutError
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shared import tracing
from shared.kafka.consumed import ConsumedEvent, event_scope
from shared.kafka.producer import OutboundRecord
from shared.tracing import consumer, outbox, spans
from tests.support.events import milestone_completed

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    local = provider.get_tracer("test")
    for module in (outbox, consumer, spans):
        monkeypatch.setattr(module, "tracer", lambda: local)
    monkeypatch.setattr(tracing, "enabled", True)
    yield memory
    provider.shutdown()


def by_name(memory: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in memory.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


@dataclass
class Row:
    topic: str
    event_id: str
    event_type: str
    key: str | None
    traceparent: str | None
    tracestate: str | None


def test_each_row_is_sent_in_its_own_trace_and_its_headers_carry_the_send_span(
    exported: InMemorySpanExporter,
) -> None:
    rows = [
        Row("goals", "e-1", "goal.created", "g-1", PARENT, "vendor=1"),
        Row("goals", "e-2", "goal.updated", "g-1", None, None),
    ]
    records = [OutboundRecord(topic="goals", value=b"{}", headers=[]) for _ in rows]
    outbox.Publication("goals", rows, records).end([None, KafkaTimeoutError()])

    found = by_name(exported)
    (batch,) = found["outbox relay"]
    first, second = found["send goals"]
    assert first.kind is SpanKind.PRODUCER
    assert format(first.context.trace_id, "032x") == PARENT.split("-")[1]
    assert first.parent is not None
    assert format(first.parent.span_id, "016x") == PARENT.split("-")[2]
    assert first.attributes is not None
    assert first.attributes["cloudevents.event_id"] == "e-1"
    assert first.status.status_code is StatusCode.UNSET
    # A row written outside any trace starts one; both link to the batch.
    assert second.parent is None
    assert [link.context.span_id for link in second.links] == [batch.context.span_id]
    # Not acknowledged: the span says so, and so does the batch.
    assert second.status.status_code is StatusCode.ERROR
    assert batch.status.status_code is StatusCode.ERROR
    headers = dict(records[0].headers)
    assert headers["traceparent"].decode() == (
        f"00-{PARENT.split('-')[1]}-{format(first.context.span_id, '016x')}-01"
    )
    assert headers["tracestate"] == b"vendor=1"


def consumed(traceparent: str | None, offset: int) -> ConsumedEvent:
    headers = [("traceparent", traceparent.encode())] if traceparent else []
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        "goals", 0, offset, 0, 0, None, b"{}", None, 0, 2, headers
    )
    return ConsumedEvent(milestone_completed(), record)


async def test_each_event_continues_its_record_and_is_current_in_its_scope(
    exported: InMemorySpanExporter,
) -> None:
    batch = [consumed(PARENT, 7), consumed(None, 8)]
    seen: list[trace.SpanContext] = []

    async def handler(events: Sequence[ConsumedEvent]) -> None:
        outside = trace.get_current_span().get_span_context()
        for item in events:
            with event_scope(item.event):
                seen.append(trace.get_current_span().get_span_context())
        seen.append(outside)

    await consumer.traced(handler, group_id="sessions", service="sessions")(batch)

    found = by_name(exported)
    (process,) = found["process goals"]
    first, second = found["handle milestone.completed"]
    assert first.parent is not None
    assert format(first.parent.span_id, "016x") == PARENT.split("-")[2]
    assert first.attributes is not None
    assert first.attributes["messaging.kafka.offset"] == 7
    assert second.parent is None  # no header: a trace of its own
    assert seen == [first.context, second.context, process.context]
    assert {link.context.span_id for link in process.links} == {
        first.context.span_id,
        second.context.span_id,
    }


async def test_a_failing_handler_marks_every_event_span(exported: InMemorySpanExporter) -> None:
    async def handler(events: Sequence[ConsumedEvent]) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await consumer.traced(handler, group_id="g", service="s")([consumed(PARENT, 1)])
    found = by_name(exported)
    (handle,) = found["handle milestone.completed"]
    (process,) = found["process goals"]
    assert handle.status.status_code is StatusCode.ERROR
    assert process.status.status_code is StatusCode.ERROR


def test_a_span_links_to_a_stored_traceparent(exported: InMemorySpanExporter) -> None:
    with spans.span("fire checkin.missed", link=PARENT):
        pass
    with spans.span("fire checkin.missed", link="not-a-traceparent"):
        pass
    linked, unlinked = by_name(exported)["fire checkin.missed"]
    assert [format(link.context.trace_id, "032x") for link in linked.links] == [
        PARENT.split("-")[1]
    ]
    assert linked.parent is None  # hours later: a link, not a child
    assert list(unlinked.links) == []
