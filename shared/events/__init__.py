"""CloudEvents envelope, the typed catalog, and parsing/building over it."""

from shared.events.envelope import CloudEvent, EventData
from shared.events.errors import (
    EventError,
    InvalidEventError,
    MalformedEventError,
    UnknownEventTypeError,
)
from shared.events.registry import EVENT_TYPES, build_event, parse_event

__all__ = [
    "EVENT_TYPES",
    "CloudEvent",
    "EventData",
    "EventError",
    "InvalidEventError",
    "MalformedEventError",
    "UnknownEventTypeError",
    "build_event",
    "parse_event",
]
