"""Spans of our own, for what no library knows: scheduler passes, timer firings, deliveries."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import AttributeValue

from shared.tracing.propagation import context_of, link_to
from shared.tracing.sdk import tracer


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    parent: str | None = None,
    link: str | None = None,
    start_time: int | None = None,
) -> Iterator[trace.Span]:
    """A current span; ``parent`` continues a stored ``traceparent``, ``link`` links to one.

    Without ``parent`` the span is a child of the current one (or a new trace's
    root). An exception escaping the block is recorded and sets the error status.
    """
    links: list[Link] = []
    if link is not None and (found := link_to(link)) is not None:
        links.append(found)
    with tracer().start_as_current_span(
        name,
        context=context_of(parent) if parent else None,
        kind=kind,
        attributes=attributes,
        links=links,
        start_time=start_time,
    ) as current:
        yield current
