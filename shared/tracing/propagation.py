"""W3C trace context in and out of what Followthrough stores and sends.

The outbox row, the timer row and the CloudEvent keep the ``traceparent`` and
``tracestate`` of the change that made them, as strings; these helpers turn
the current span into those strings and the strings back into a parent
context or a link. Kafka headers use the same W3C format.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

W3C = TraceContextTextMapPropagator()
HEADER_NAMES = ("traceparent", "tracestate")


def current() -> tuple[str | None, str | None]:
    """``traceparent`` and ``tracestate`` of the current span, or (None, None) outside one."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier)
    return carrier.get("traceparent"), carrier.get("tracestate")


def context_of(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The remote parent a stored ``traceparent`` names (None when absent or malformed)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    extracted = W3C.extract(carrier)
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


def link_to(traceparent: str | None, tracestate: str | None = None) -> Link | None:
    """A span link to what a stored ``traceparent`` names (None when absent or malformed)."""
    context = context_of(traceparent, tracestate)
    if context is None:
        return None
    return Link(trace.get_current_span(context).get_span_context())


def from_headers(headers: Iterable[tuple[str, bytes]] | None) -> Context | None:
    """The context a Kafka record's ``traceparent``/``tracestate`` headers carry."""
    found: dict[str, str] = {}
    for name, value in headers or ():
        if name in HEADER_NAMES and value:
            found[name] = value.decode("ascii", "replace")
    return context_of(found.get("traceparent"), found.get("tracestate"))


def to_headers(context: trace.SpanContext) -> list[tuple[str, bytes]]:
    """Kafka headers for a span's context."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(context)))
    return [(name, carrier[name].encode()) for name in HEADER_NAMES if name in carrier]


def hex_ids(context: trace.SpanContext) -> tuple[str, str]:
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
