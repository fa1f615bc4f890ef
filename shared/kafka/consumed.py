"""What a service's handler sees of the consumer runner: the events, their scope, its errors."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import ConsumerRecord

from shared import tracing
from shared.context import bound
from shared.events import CloudEvent


@dataclass(frozen=True, slots=True)
class ConsumedEvent:
    event: CloudEvent
    record: ConsumerRecord[bytes, bytes]

    @property
    def topic(self) -> str:
        return str(self.record.topic)

    @property
    def partition(self) -> int:
        return int(self.record.partition)

    @property
    def offset(self) -> int:
        return int(self.record.offset)


EventHandler = Callable[[Sequence[ConsumedEvent]], Awaitable[None]]
"""Handles one partition's events, in order; returns only once its work is durable."""


def event_scope(event: CloudEvent) -> contextlib.AbstractContextManager[None]:
    """Bind an event's ids to the log context; handlers of batches use it per event.

    With tracing on, the event's span is the current one inside, too.
    """
    scope = bound(correlation_id=event.correlationid, tenant_id=event.tenantid, event_id=event.id)
    if tracing.enabled:
        from shared.tracing.consumer import event_scope as traced_scope

        return traced_scope(event, scope)
    return scope


class PermanentHandlerError(Exception):
    """Raised by a handler for an event that can never succeed: dead-letter it without retrying."""
