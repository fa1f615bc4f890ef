"""The CloudEvents 1.0 envelope every Followthrough event travels in.

Structured mode JSON (the whole event, attributes and data, is one JSON
document) because it survives every hop unchanged: Kafka value, outbox row,
webhook body. Extension attributes carry what the platform needs to trace and
route an event: the tenant, the correlation id shared by everything one
request caused, the causation id of the event that caused this one, the data
schema version and the partition key (the goal id) that keeps a goal's events
in order. With tracing on, the CloudEvents distributed-tracing extension
(``traceparent``, ``tracestate``) names the span in which the event was made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_OPTIONAL_ATTRIBUTES = ("subject", "dataschema", "causationid", "traceparent", "tracestate")
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"


class EventData(BaseModel):
    """Base of every event's data: immutable, and tolerant of fields added by newer producers.

    NaN and infinity are refused: JSON has no such numbers, so an event holding
    one could be published but never parsed back (found by the round-trip
    property test).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class CloudEvent(BaseModel):
    """Attributes common to all events; subclasses pin ``type`` and ``data``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: ClassVar[str] = ""
    """The logical topic (without deployment prefix) events of this type are published to."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(pattern=EVENT_ID_PATTERN, description="Unique; consumers dedupe on it.")
    source: str = Field(min_length=1, max_length=256, examples=["/followthrough/goals"])
    type: str
    subject: str | None = Field(default=None, max_length=256)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = Field(default=None, max_length=512)
    tenantid: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    correlationid: str = Field(min_length=1, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)
    schemaversion: int = Field(default=1, ge=1)
    partitionkey: str = Field(min_length=1, max_length=128, description="The goal id.")
    traceparent: str | None = Field(
        default=None,
        max_length=128,
        description="W3C trace context of the change that made the event (distributed tracing "
        "extension); present only when the producing service traces.",
    )
    tracestate: str | None = Field(default=None, max_length=512)
    data: EventData

    def to_json(self) -> bytes:
        """Structured-mode JSON with absent optional attributes omitted, as CloudEvents asks."""
        return self.model_dump_json(exclude=self._absent()).encode()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=self._absent())

    def _absent(self) -> set[str]:
        return {name for name in _OPTIONAL_ATTRIBUTES if getattr(self, name) is None}


def utc_now() -> datetime:
    return datetime.now(UTC)
