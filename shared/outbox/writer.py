"""Writing events into the outbox inside the caller's transaction.

The row commits or rolls back with the state change that caused it, so an
event is never published for a change that did not happen, and never lost for
one that did. A successful commit wakes the relay at once; there is no
polling delay on the happy path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared import tracing
from shared.db import core
from shared.db.database import on_commit
from shared.db.tables import outbox
from shared.events import CloudEvent
from shared.events.envelope import utc_now

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_INSERT = insert(outbox)


class Outbox:
    """Adds events to a session's transaction and signals the relay when it commits."""

    def __init__(self, *, topic_prefix: str = "") -> None:
        self._topic_prefix = topic_prefix
        self.committed = asyncio.Event()

    def topic_of(self, event: CloudEvent) -> str:
        return f"{self._topic_prefix}{event.topic}"

    async def add(
        self,
        session: AsyncSession,
        events: Iterable[CloudEvent],
        payloads: Sequence[bytes] | None = None,
    ) -> None:
        """Insert ``events``; ``payloads``, when given, are their ``to_json()`` already made."""
        rows = self._rows(events, payloads)
        if not rows:
            return
        await core.execute(session, _INSERT, rows)
        on_commit(session, self.committed.set)

    def insert_on(
        self,
        connection: Connection,
        events: Iterable[CloudEvent],
        payloads: Sequence[bytes] | None = None,
    ) -> bool:
        """Insert ``events`` in the transaction of a plain ``connection``; True if there were any.

        For work run as one synchronous function (``Database.run_core``), which
        has no session to hang the commit callback on: once the transaction
        committed, the caller wakes the relay with ``committed.set()`` (else it
        finds the rows on its next poll).
        """
        rows = self._rows(events, payloads)
        if rows:
            connection.execute(_INSERT, rows)
        return bool(rows)

    def _rows(
        self, events: Iterable[CloudEvent], payloads: Sequence[bytes] | None
    ) -> list[dict[str, Any]]:
        return [
            self._row(event, payloads[index] if payloads is not None else event.to_json())
            for index, event in enumerate(events)
        ]

    def _row(self, event: CloudEvent, payload: bytes) -> dict[str, Any]:
        row = {
            "event_id": event.id,
            "event_type": event.type,
            "topic": self.topic_of(event),
            "key": event.partitionkey,
            "payload": payload,
            "headers": {"content-type": CONTENT_TYPE, "correlation-id": event.correlationid},
            "created_at": utc_now(),
            "sent_at": None,
        }
        if tracing.enabled:  # every row of a statement has the same keys: set both, even None
            row["traceparent"], row["tracestate"] = event.traceparent, event.tracestate
        return row
