"""Erasing a person from the tables every service has: outbox, idempotency keys, dead letters.

The outbox keeps published events for the replay window (a new broker cluster
gets them again), so a published row naming the person is rewritten, or a
replay would publish the person again. Idempotency keys keep the first answer
of a POST (which may show the person) and dead letters keep the record as it
came. Rows are read in pages by primary key and only rows that mention one of
the person's addresses are rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.tables import dead_letters, idempotency_keys, outbox
from shared.privacy.scrub import Target

PAGE = 500


async def scrub_outbox(session: AsyncSession, target: Target, keys: Iterable[str]) -> int:
    """Rewrite the outbox rows of the given partition keys (goal ids) that name the person."""
    changed = 0
    keys = sorted(set(keys))
    for start in range(0, len(keys), PAGE):
        chunk = keys[start : start + PAGE]
        rows = await session.execute(
            select(outbox.c.id, outbox.c.payload).where(outbox.c.key.in_(chunk))
        )
        for row_id, payload in rows.all():
            if not target.mentions(payload):
                continue
            await session.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(payload=target.scrub_bytes(payload))
            )
            changed += 1
    return changed


async def scrub_idempotency(session: AsyncSession, target: Target, tenant_id: str) -> int:
    changed = 0
    rows = await session.execute(
        select(idempotency_keys.c.key, idempotency_keys.c.response_body).where(
            idempotency_keys.c.tenant_id == tenant_id
        )
    )
    for key, body in rows.all():
        if body is None or not target.mentions(body):
            continue
        await session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
            .values(response_body=target.scrub_bytes(body))
        )
        changed += 1
    return changed


async def scrub_dead_letters(session: AsyncSession, target: Target, tenant_id: str) -> int:
    changed = 0
    rows = await session.execute(
        select(dead_letters.c.id, dead_letters.c.record_value, dead_letters.c.error).where(
            dead_letters.c.tenant_id == tenant_id
        )
    )
    for row_id, value, error in rows.all():
        if not (target.mentions(value) or target.mentions(error)):
            continue
        await session.execute(
            update(dead_letters)
            .where(dead_letters.c.id == row_id)
            .values(record_value=target.scrub_bytes(value), error=target.scrub_text(error))
        )
        changed += 1
    return changed


async def scrub_platform(
    session: AsyncSession, target: Target, tenant_id: str, outbox_keys: Iterable[str]
) -> int:
    """Every platform table of this service's database; the number of rows rewritten."""
    return (
        await scrub_outbox(session, target, outbox_keys)
        + await scrub_idempotency(session, target, tenant_id)
        + await scrub_dead_letters(session, target, tenant_id)
    )
