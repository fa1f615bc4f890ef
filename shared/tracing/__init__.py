"""OpenTelemetry tracing: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Configured from the standard ``OTEL_*`` environment variables only (endpoint,
headers, service name, resource attributes, sampler, batch processor), so an
operator points a service at a collector the way they point any other
OpenTelemetry program at it.

While it is off, nothing of OpenTelemetry is even imported: every hook in the
hot paths is a check of :data:`enabled` (a module attribute read), and the
modules under this package that import the SDK are loaded only by
:func:`configure`. Callers therefore write ``if tracing.enabled:`` before
calling into ``shared.tracing.<module>``.
"""

from __future__ import annotations

import os

enabled = False
"""Whether this process exports traces; set once, by :func:`configure`, before anything starts."""

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment asks for tracing: an OTLP endpoint, and the SDK not disabled."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def configure(service: str) -> bool:
    """Install the SDK (provider, OTLP exporter, instrumentations) when the environment asks.

    Called once per process by its entry point, before the app, its database
    engines and HTTP clients are built. Returns whether tracing is on.
    """
    global enabled
    if enabled:
        return True
    if not wanted():
        return False
    from shared.tracing import sdk

    sdk.install(service)
    enabled = True
    return True


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span (None while off or outside a span)."""
    if not enabled:
        return None
    from shared.tracing.propagation import current

    return current()[0]
