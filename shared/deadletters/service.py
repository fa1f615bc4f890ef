"""Listing dead letters a caller may see, and re-driving one to its source topic.

Visibility: a tenant credential sees the dead letters whose record names its
tenant; a credential with the ``operator`` scope sees every dead letter,
including records no tenant can be read from.

Re-driving publishes the original key, value and headers (without the
``dlq-*`` ones) to the source topic, then marks the row. Every consumer group
of that topic sees the record again: those that handled it already skip it by
event id. The broker call happens outside any database transaction, so no
lock is held on network I/O; two operators re-driving one dead letter at once
may publish it twice, which the same dedupe absorbs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from sqlalchemy import Row

from shared.auth.tokens import OPERATOR_SCOPE, Principal
from shared.db.database import Database
from shared.deadletters.schemas import DeadLetterOut, DeadLetterPage
from shared.deadletters.store import DEAD, DeadLetterRepository, stored_record
from shared.http.cursors import decode_cursor, encode_cursor
from shared.http.problems import ProblemError
from shared.kafka.producer import EventProducer, OutboundRecord
from shared.logs import get_logger

log = get_logger(__name__)
PUBLISH_TIMEOUT_SECONDS = 10.0


def visible_tenant(principal: Principal) -> str | None:
    """The tenant filter for this caller: None (everything) for operators."""
    return None if OPERATOR_SCOPE in principal.scopes else principal.tenant_id


def item(row: Row[Any]) -> DeadLetterOut:
    return DeadLetterOut(
        id=row.id,
        topic=row.topic,
        partition=row.source_partition,
        offset=row.source_offset,
        reason=row.reason,
        error=row.error,
        event_id=row.event_id,
        event_type=row.event_type,
        tenant_id=row.tenant_id,
        consumer_group=row.consumer_group,
        dead_lettered_at=row.dead_lettered_at,
        status=row.status,
        redriven_at=row.redriven_at,
    )


class DeadLetterService:
    def __init__(self, database: Database, producer: EventProducer) -> None:
        self._db = database
        self._producer = producer

    async def page(
        self, principal: Principal, *, status: str | None, cursor: str | None, limit: int
    ) -> DeadLetterPage:
        async with self._db.reader() as session:
            rows = await DeadLetterRepository(session).page(
                tenant_id=visible_tenant(principal),
                status=status,
                before=decode_cursor(cursor),
                limit=limit + 1,
            )
        page = rows[:limit]
        more = len(rows) > limit and page
        return DeadLetterPage(
            items=[item(row) for row in page],
            next_cursor=encode_cursor(page[-1].dead_lettered_at, page[-1].id) if more else None,
        )

    async def redrive(self, principal: Principal, dead_letter_id: str) -> DeadLetterOut:
        tenant = visible_tenant(principal)
        async with self._db.reader() as session:
            row = await DeadLetterRepository(session).get(dead_letter_id, tenant_id=tenant)
        if row is None:
            raise ProblemError(404, f"dead letter {dead_letter_id} not found", slug="not-found")
        if row.status != DEAD:
            raise ProblemError(
                409, f"dead letter {dead_letter_id} was already re-driven", slug="already-redriven"
            )
        record = stored_record(row)
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(
                    OutboundRecord(
                        topic=record.topic,
                        value=record.value,
                        key=record.key,
                        headers=record.headers,
                    )
                ),
                PUBLISH_TIMEOUT_SECONDS,
            )
        except (KafkaError, OSError, TimeoutError) as error:
            log.warning("dead_letter.redrive.failed", dead_letter_id=row.id, error=repr(error))
            raise ProblemError(
                503,
                "the broker did not accept the record; nothing was re-driven, try again",
                slug="broker-unavailable",
                headers={"Retry-After": "5"},
            ) from None
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            repository = DeadLetterRepository(session)
            await repository.mark_redriven(row.id, now)
            row = await repository.get(row.id, tenant_id=None)
        assert row is not None
        log.info(
            "dead_letter.redriven",
            dead_letter_id=row.id,
            topic=row.topic,
            partition=row.source_partition,
            offset=row.source_offset,
            event_id=row.event_id,
        )
        return item(row)
