"""The SDK itself: tracer provider, OTLP/HTTP exporter, and the maintained instrumentations.

Imported only when tracing is on (see ``shared.tracing.configure``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

TRACER_NAME = "followthrough"

summary: dict[str, Any] = {}
"""What was set up, for the entry point to log once logging is configured."""
_EXCLUDED_URLS = "healthz,readyz,metrics"
"""Probes and scrapes: a span each would bury the requests operators look for."""


class NoOrphanClients(Sampler):
    """The configured sampler, except that a client span outside any trace is dropped.

    The background loops (relay polls, gauges, leadership, scheduler polls) query
    the database all the time; each query would otherwise be a trace of its own.
    """

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if (
            kind is SpanKind.CLIENT
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClients{{{self._inner.get_description()}}}"


def install(service: str) -> None:
    # The stable HTTP and database semantic conventions unless the operator chose otherwise
    # (the instrumentations still default to the older attribute names).
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES come first; the service's own name only
    # where neither names it.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service}))
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol and protocol != "http/protobuf":
        summary["unsupported_protocol"] = protocol  # only OTLP over HTTP with protobuf ships
    # The sampler (OTEL_TRACES_SAMPLER, _ARG), the exporter (OTEL_EXPORTER_OTLP_*) and the
    # batch processor (OTEL_BSP_*) read their own variables.
    configured = TracerProvider(shutdown_on_exit=False).sampler  # from OTEL_TRACES_SAMPLER
    provider = TracerProvider(resource=resource, sampler=NoOrphanClients(configured))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # flushed at exit (the SDK's atexit hook)
    HTTPXClientInstrumentor().instrument(
        request_hook=_url_without_query, async_request_hook=_async_url_without_query
    )
    summary.update(
        service_name=resource.attributes.get(SERVICE_NAME),
        sampler=configured.get_description(),
        protocol="http/protobuf",
    )


def _url_without_query(span: trace.Span, request: Any) -> None:
    """An endpoint's URL may hold a token in its query: the span keeps scheme, host and path."""
    if not span.is_recording():
        return
    url = httpx.URL(str(request.url))
    bare = str(url.copy_with(query=None, fragment=None, username=None, password=None))
    span.set_attribute("url.full", bare)
    if os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").find("http/dup") >= 0:
        span.set_attribute("http.url", bare)


async def _async_url_without_query(span: trace.Span, request: Any) -> None:
    _url_without_query(span, request)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def instrument_engine(engine: Any) -> None:
    """Database spans (semantic conventions for database clients) for one async engine."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its declared range stops below SQLAlchemy 2.1, which the project runs; the engine event
    # hooks it uses are unchanged in 2.1 (the tracing end-to-end test sees the spans).
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine, enable_commenter=False, skip_dep_check=True
    )


def instrument_app(app: Any) -> None:
    """Server spans (HTTP semantic conventions) for one FastAPI app, probes excluded."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # Without a span per ASGI message (``http send``/``http receive``): noise, and cost.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=_EXCLUDED_URLS, exclude_spans=["receive", "send"]
    )
