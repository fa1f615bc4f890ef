"""Per-request and per-message context, carried by contextvars.

structlog's contextvars integration is the single place where this context
lives, so every log line written while handling a request or a Kafka message
carries the same identifiers without passing them through every call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

CONTEXT_KEYS = ("request_id", "correlation_id", "tenant_id", "event_id")


def new_id() -> str:
    """A fresh random identifier, used for request, correlation and event ids."""
    return str(uuid.uuid4())


def current(key: str) -> str | None:
    """The value bound for ``key`` in the current context, if any."""
    value = structlog.contextvars.get_contextvars().get(key)
    return value if isinstance(value, str) else None


def current_correlation_id() -> str | None:
    return current("correlation_id")


def current_event_id() -> str | None:
    """The id of the event being handled, which becomes the causation id of what it causes."""
    return current("event_id")


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind ``values`` (skipping ``None``) for the duration of the block, then restore."""
    clean = {key: value for key, value in values.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**clean):
        yield
