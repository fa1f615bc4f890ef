"""The structlog processor that puts ``trace_id`` and ``span_id`` on every line inside a span.

Added to the chain by ``shared.logs.configure_logging`` only while tracing is
on, so a process without tracing does not even look for a span.
"""

from __future__ import annotations

from opentelemetry import trace
from structlog.types import EventDict, WrappedLogger


def add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict
