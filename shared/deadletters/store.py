"""Every query on the ``dead_letters`` table, and how a dead record is described for it.

A record that never parsed as an event still gets its id, type and tenant
when its JSON names them (an unknown type, a missing field), so a tenant can
see its own poison; a record with no readable tenant is for operators only.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.database import Database
from shared.db.tables import dead_letters
from shared.events import CloudEvent
from shared.events.envelope import EVENT_ID_PATTERN
from shared.kafka.dead_letter import DLQ_HEADER_PREFIX, MAX_ERROR_BYTES

DEAD = "dead"
REDRIVEN = "redriven"
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_EVENT_TYPE = re.compile(r"^[a-z_]{1,49}\.[a-z_]{1,50}$")


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """One record a consumer gave up on, as the runner hands it to the store."""

    consumer_group: str
    topic: str
    partition: int
    offset: int
    reason: str
    error: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]]
    dead_lettered_at: datetime
    event: CloudEvent | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """What re-driving publishes: the original key, value and headers (no ``dlq-*``)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def identity(entry: DeadLetterEntry) -> tuple[str | None, str | None, str | None]:
    """(event id, event type, tenant) of the dead record, as far as it can be read."""
    if entry.event is not None:
        return entry.event.id, entry.event.type, entry.event.tenantid
    try:
        document = orjson.loads(entry.value)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(document, dict):
        return None, None, None
    return (
        _matching(document.get("id"), _EVENT_ID),
        _matching(document.get("type"), _EVENT_TYPE),
        _matching(document.get("tenantid"), _TENANT),
    )


def _matching(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.match(value) else None


def _encode_headers(headers: Sequence[tuple[str, bytes | None]]) -> list[list[str | None]]:
    return [
        [name, None if value is None else base64.b64encode(value).decode()]
        for name, value in headers
        if not name.startswith(DLQ_HEADER_PREFIX)
    ]


def _decode_headers(stored: Any) -> list[tuple[str, bytes]]:
    return [
        (str(name), b"" if value is None else base64.b64decode(value)) for name, value in stored
    ]


class DeadLetterStore:
    """Records dead letters for the consumer runner; one per service runtime."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, entry: DeadLetterEntry) -> None:
        """Insert the dead letter; a second record of the same source offset changes nothing."""
        event_id, event_type, tenant_id = identity(entry)
        values = {
            "id": str(uuid.uuid4()),
            "consumer_group": entry.consumer_group,
            "topic": entry.topic,
            "source_partition": entry.partition,
            "source_offset": entry.offset,
            "reason": entry.reason[:64],
            "error": entry.error.encode("utf-8", "replace")[:MAX_ERROR_BYTES].decode(
                "utf-8", "ignore"
            ),
            "event_id": event_id,
            "event_type": event_type,
            "tenant_id": tenant_id,
            "record_key": entry.key,
            "record_value": entry.value,
            "record_headers": _encode_headers(entry.headers),
            "dead_lettered_at": entry.dead_lettered_at,
            "status": DEAD,
            "redriven_at": None,
        }
        async with self._db.transaction() as session:
            insert = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
            await session.execute(insert(dead_letters).values(values).on_conflict_do_nothing())


class DeadLetterRepository:
    """Reads and status changes for the API, inside the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Newest first; ``tenant_id`` None means every dead letter (operators).

        Without the stored record: a page of large records would be read for nothing.
        """
        listed = [c for c in dead_letters.c if not c.name.startswith("record_")]
        query = select(*listed).order_by(
            dead_letters.c.dead_lettered_at.desc(), dead_letters.c.id.desc()
        )
        if tenant_id is not None:
            query = query.where(dead_letters.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(dead_letters.c.status == status)
        if before is not None:
            moment, item_id = before
            query = query.where(
                or_(
                    dead_letters.c.dead_lettered_at < moment,
                    and_(dead_letters.c.dead_lettered_at == moment, dead_letters.c.id < item_id),
                )
            )
        return (await self._session.execute(query.limit(limit))).all()

    async def get(self, dead_letter_id: str, *, tenant_id: str | None) -> Row[Any] | None:
        query = select(dead_letters).where(dead_letters.c.id == dead_letter_id)
        if tenant_id is not None:
            query = query.where(dead_letters.c.tenant_id == tenant_id)
        return (await self._session.execute(query)).first()

    async def mark_redriven(self, dead_letter_id: str, now: datetime) -> bool:
        """Dead -> redriven; False when it was not dead any more (someone else re-drove it)."""
        result = await self._session.execute(
            update(dead_letters)
            .where(dead_letters.c.id == dead_letter_id, dead_letters.c.status == DEAD)
            .values(status=REDRIVEN, redriven_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


def stored_record(row: Row[Any]) -> StoredRecord:
    return StoredRecord(
        topic=row.topic,
        key=row.record_key,
        value=row.record_value,
        headers=_decode_headers(row.record_headers),
    )
