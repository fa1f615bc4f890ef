"""Parse, build and route events by type, over the whole catalog.

Parsing goes through one pydantic discriminated union, so the envelope and the
data are validated in a single pass over the bytes, and each failure becomes a
typed error (malformed, unknown type, invalid data naming the field) that a
consumer can dead-letter with.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar, Union, cast

from pydantic import Field, TypeAdapter, ValidationError

from shared import tracing
from shared.context import current_correlation_id, current_event_id, new_id
from shared.events.catalog import ALL_EVENTS
from shared.events.envelope import CloudEvent, EventData, utc_now
from shared.events.errors import InvalidEventError, MalformedEventError, UnknownEventTypeError

EventT = TypeVar("EventT", bound=CloudEvent)

EVENT_TYPES: dict[str, type[CloudEvent]] = {
    cls.model_fields["type"].default: cls for cls in ALL_EVENTS
}
"""Every known event type name mapped to its model."""

AnyEvent = Annotated[Union[tuple(ALL_EVENTS)], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
_ADAPTER: TypeAdapter[CloudEvent] = TypeAdapter(AnyEvent)  # type: ignore[arg-type]


def event_types_for_topic(topic: str) -> list[str]:
    return [name for name, cls in EVENT_TYPES.items() if cls.topic == topic]


def topic_for(event: CloudEvent | type[CloudEvent]) -> str:
    return event.topic


def parse_event(raw: bytes | str | Mapping[str, Any]) -> CloudEvent:
    """Validate structured-mode JSON (or an already decoded object) into its typed event."""
    try:
        if isinstance(raw, Mapping):
            return _ADAPTER.validate_python(raw)
        return _ADAPTER.validate_json(raw)
    except ValidationError as error:
        raise _typed_error(error, raw) from None
    except UnicodeDecodeError:
        raise MalformedEventError("event is not valid UTF-8") from None


def _typed_error(error: ValidationError, raw: bytes | str | Mapping[str, Any]) -> Exception:
    errors = error.errors(include_url=False)
    first = errors[0] if errors else {"type": ""}
    kind = first["type"]
    if kind in {"json_invalid", "json_type", "model_type", "dict_type"} and not first.get("loc"):
        if isinstance(raw, bytes) and not _is_utf8(raw):
            return MalformedEventError("event is not valid UTF-8")
        return MalformedEventError(f"event is not a JSON object: {first.get('msg', '')}")
    if kind == "union_tag_invalid":
        ctx = first.get("ctx")
        return UnknownEventTypeError(ctx.get("tag") if isinstance(ctx, dict) else None)
    if kind == "union_tag_not_found":
        return InvalidEventError(None, [{"loc": ("type",), "msg": "Field required"}])
    event_type = str(first["loc"][0]) if first.get("loc") else None
    trimmed = [{**item, "loc": tuple(item["loc"])[1:]} for item in errors]
    return InvalidEventError(event_type, trimmed)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


_NO_TRACE_CONTEXT: dict[str, Any] = {}


def build_event(
    cls: type[EventT],
    data: EventData,
    *,
    tenant_id: str,
    partition_key: str,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> EventT:
    """Build an event, taking correlation and causation from the current context by default.

    The correlation id of the request or message being handled flows into every
    event it causes; the event being handled (if any) becomes the causation.
    """
    trace_context = _NO_TRACE_CONTEXT
    if tracing.enabled:  # the distributed-tracing extension: the span that made the event
        from shared.tracing.propagation import current

        traceparent, tracestate = current()
        trace_context = {"traceparent": traceparent, "tracestate": tracestate}
    # ``type`` is pinned by each subclass's default (mypy, not seeing it on the base, takes
    # the ** of an Any-valued dict as possibly holding it).
    return cls(
        id=event_id or new_id(),
        source=source,
        subject=subject,
        time=time or utc_now(),
        tenantid=tenant_id,
        correlationid=correlation_id or current_correlation_id() or new_id(),
        causationid=causation_id or current_event_id(),
        partitionkey=partition_key,
        data=cast(Any, data),
        **trace_context,
    )
