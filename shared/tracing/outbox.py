"""Spans of the outbox relay: one per batch, one ``send`` per row, continuing the row's trace.

The row keeps the trace context of the change that wrote it; the ``send``
span is that context's child, and its own context goes into the record's
``traceparent``/``tracestate`` headers, which the consumer continues.
(The aiokafka instrumentation would inject the relay's own context instead:
the relay sends long after, and outside, the change that caused each row.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from shared.kafka.producer import EventProducer, OutboundRecord
from shared.tracing.propagation import context_of, to_headers
from shared.tracing.sdk import tracer


class Publication:
    """The spans of one relay batch, ended when the broker has answered for every record."""

    def __init__(
        self, service: str, rows: Sequence[Any], records: Sequence[OutboundRecord]
    ) -> None:
        self._batch = tracer().start_span(
            "outbox relay",
            kind=SpanKind.INTERNAL,
            attributes={
                "messaging.system": "kafka",
                "messaging.batch.message_count": len(rows),
                "followthrough.service": service,
            },
        )
        batch_link = Link(self._batch.get_span_context())
        self._sends: list[trace.Span] = []
        for row, record in zip(rows, records, strict=True):
            span = tracer().start_span(
                f"send {row.topic}",
                context=context_of(row.traceparent, row.tracestate),
                kind=SpanKind.PRODUCER,
                links=[batch_link],
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.name": "send",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": row.topic,
                    "messaging.message.id": row.event_id,
                    "messaging.kafka.message.key": row.key or "",
                    "cloudevents.event_id": row.event_id,
                    "cloudevents.event_type": row.event_type,
                },
            )
            record.headers.extend(to_headers(span.get_span_context()))
            self._sends.append(span)

    def end(self, results: Sequence[BaseException | None]) -> None:
        failed = 0
        for span, error in zip(self._sends, results, strict=True):
            if error is not None:
                failed += 1
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
        if failed:
            self._batch.set_status(Status(StatusCode.ERROR, f"{failed} records not acknowledged"))
        self._batch.end()


async def publish(
    producer: EventProducer, service: str, rows: Sequence[Any], records: Sequence[OutboundRecord]
) -> list[BaseException | None]:
    """``producer.send_many(records)`` inside the batch's spans."""
    publication = Publication(service, rows, records)
    try:
        results = await producer.send_many(records)
    except BaseException as error:
        publication.end([error] * len(records))
        raise
    publication.end(results)
    return results
