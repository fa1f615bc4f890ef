"""Typed errors for event parsing, so consumers can dead-letter with a precise reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EventError(ValueError):
    """Base for every reason an event cannot be parsed or built."""

    reason = "invalid_event"


class MalformedEventError(EventError):
    """The bytes are not a JSON object (or not UTF-8)."""

    reason = "malformed_json"


class UnknownEventTypeError(EventError):
    """The JSON is an event, but of a type this catalog does not know."""

    reason = "unknown_event_type"

    def __init__(self, event_type: object) -> None:
        super().__init__(f"unknown event type: {event_type!r}")
        self.event_type = event_type


class InvalidEventError(EventError):
    """The event's type is known, but its envelope or data fails validation."""

    reason = "invalid_event_data"

    def __init__(self, event_type: str | None, errors: Sequence[dict[str, Any]]) -> None:
        self.event_type = event_type
        self.errors = [
            {"field": ".".join(str(part) for part in error.get("loc", ())), "message": error["msg"]}
            for error in errors
        ]
        fields = ", ".join(f"{item['field']}: {item['message']}" for item in self.errors[:5])
        super().__init__(f"invalid {event_type or 'event'}: {fields}")

    @property
    def fields(self) -> list[str]:
        return [item["field"] for item in self.errors]
