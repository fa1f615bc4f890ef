"""Spans of the consumer: one ``process`` span per batch, one ``handle`` span per event.

Each event's span continues the trace its record's ``traceparent`` header
carries (the relay's ``send`` span), so a trace runs on across services; the
batch span links to every event it holds (messaging semantic conventions for
batch processing). A handler that takes batches enters ``event_scope`` per
event, which makes that event's span the current one: its log lines, queries
and the events it causes belong to the event's trace.

The aiokafka instrumentation is not used: around ``getmany`` it makes
``receive`` spans that end before the batch is handled and are current for
none of the handling.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from shared.events import CloudEvent
from shared.kafka.consumed import ConsumedEvent, EventHandler
from shared.tracing.propagation import context_of, from_headers
from shared.tracing.sdk import tracer

_event_spans: contextvars.ContextVar[dict[int, trace.Span] | None] = contextvars.ContextVar(
    "followthrough_event_spans", default=None
)


def traced(handler: EventHandler, *, group_id: str, service: str) -> EventHandler:
    """``handler`` inside a batch span and a span per event."""

    async def handle(batch: Sequence[ConsumedEvent]) -> None:
        spans: dict[int, trace.Span] = {}
        links: list[Link] = []
        for item in batch:
            parent = from_headers(item.record.headers) or context_of(
                item.event.traceparent, item.event.tracestate
            )
            span = tracer().start_span(
                f"handle {item.event.type}",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=_attributes(item, group_id, service),
            )
            spans[id(item.event)] = span
            links.append(Link(span.get_span_context()))
        topics = sorted({item.topic for item in batch})
        token = _event_spans.set(spans)
        try:
            with tracer().start_as_current_span(
                f"process {', '.join(topics)}",
                kind=SpanKind.CONSUMER,
                links=links,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.name": "process",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": topics[0] if len(topics) == 1 else "",
                    "messaging.consumer.group.name": group_id,
                    "messaging.batch.message_count": len(batch),
                    "followthrough.service": service,
                },
            ):
                await handler(batch)
        except BaseException as error:
            for span in spans.values():
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                span.end()
            raise
        finally:
            _event_spans.reset(token)
        for span in spans.values():
            span.end()

    return handle


def _attributes(item: ConsumedEvent, group_id: str, service: str) -> dict[str, str | int]:
    event = item.event
    return {
        "messaging.system": "kafka",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": item.topic,
        "messaging.destination.partition.id": str(item.partition),
        "messaging.kafka.offset": item.offset,
        "messaging.consumer.group.name": group_id,
        "messaging.message.id": event.id,
        "cloudevents.event_id": event.id,
        "cloudevents.event_type": event.type,
        "cloudevents.event_source": event.source,
        "followthrough.tenant_id": event.tenantid,
        "followthrough.correlation_id": event.correlationid,
        "followthrough.service": service,
    }


@contextlib.contextmanager
def event_scope(
    event: CloudEvent, scope: contextlib.AbstractContextManager[None]
) -> Iterator[None]:
    """``scope`` (the event's log context) with the event's span current, when it has one."""
    spans = _event_spans.get()
    span = spans.get(id(event)) if spans else None
    with scope:
        if span is None:
            yield
            return
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield
