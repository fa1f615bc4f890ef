"""Notifications erases its part of a person on ``person.erasure_requested`` and says so.

It finds the person's addresses by hashing those on the stored messages of
the goals the request names and those of the tenant's preferences,
unsubscribes and digest entries. Then, in one transaction with the dedupe
mark and its ``person.erased``: a suppression entry (the key only) stops
every later email to them in the tenant; their preferences, unsubscribes and
digest entries are deleted (other people's digest entries lose the name);
the stored messages naming them are rewritten and marked erased (never
replayed); their email deliveries lose the address and, if not sent yet, are
cancelled; attempts' texts and the platform tables are masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime as datetime_type

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.models import (
    Attempt,
    Delivery,
    DigestEntry,
    ErasedMessage,
    Message,
    Preference,
    Suppression,
    Unsubscribe,
)
from services.notifications.repository import CANCELLED, PENDING
from shared.clock import Clock
from shared.db.database import Database
from shared.events.catalog.privacy import PersonErased, PersonErasureRequested
from shared.kafka.consumed import ConsumedEvent, event_scope
from shared.kafka.dedupe import first_deliveries
from shared.logs import get_logger
from shared.outbox.writer import Outbox
from shared.privacy.erasure import PersonFinder, erased_event
from shared.privacy.keys import ERASED_NAME
from shared.privacy.platform import scrub_platform
from shared.privacy.scrub import Target, participant_emails

log = get_logger(__name__)
CONSUMER = "notifications.privacy"


class NotificationsErasure:
    def __init__(self, database: Database, outbox: Outbox, clock: Clock, privacy_key: str) -> None:
        self._db = database
        self._outbox = outbox
        self._clock = clock
        self._finder = PersonFinder(privacy_key)

    async def __call__(self, batch: Sequence[ConsumedEvent]) -> None:
        requests = [i.event for i in batch if isinstance(i.event, PersonErasureRequested)]
        if not requests:
            return
        async with self._db.transaction() as session:
            fresh = await first_deliveries(session, CONSUMER, [event.id for event in requests])
            confirmations: list[PersonErased] = []
            for request in requests:
                if request.id not in fresh:
                    continue
                fresh.discard(request.id)
                assert isinstance(request, PersonErasureRequested)
                with event_scope(request):
                    records = await self.erase(session, request)
                    now = self._clock.now()
                    confirmations.append(erased_event(request, "notifications", records, now))
                    log.info("privacy.person.erased", records=records)
            await self._outbox.add(session, confirmations)

    async def erase(self, session: AsyncSession, request: PersonErasureRequested) -> int:
        tenant = request.tenantid
        data = request.data
        now = self._clock.now()
        await _suppress(session, tenant, data.person_key, data.erasure_id, now)
        target = Target(data.person_key)
        messages = list(
            (
                await session.execute(
                    select(Message.id, Message.payload, Message.routing).where(
                        Message.tenant_id == tenant, Message.goal_id.in_(list(data.goal_ids))
                    )
                )
            ).all()
        )
        for _, payload, _ in messages:
            try:
                self._finder.add_matches(target, tenant, participant_emails(orjson.loads(payload)))
            except ValueError:
                continue
        for model in (Preference, Unsubscribe, DigestEntry):
            emails = await session.execute(
                select(model.email).where(model.tenant_id == tenant).distinct()
            )
            self._finder.add_matches(target, tenant, (str(e) for e in emails.scalars()))
        if not target.emails:
            return 0
        records = 0
        addresses = sorted(target.emails)
        for model in (Preference, Unsubscribe, DigestEntry):
            result = await session.execute(
                delete(model).where(model.tenant_id == tenant, model.email.in_(addresses))
            )
            records += int(getattr(result, "rowcount", 0) or 0)
        rewritten: list[str] = []
        for message_id, payload, routing in messages:
            cleaned_routing = target.scrub(routing)
            if not target.mentions(payload) and cleaned_routing == routing:
                continue
            await session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(payload=target.scrub_bytes(payload), routing=cleaned_routing)
            )
            rewritten.append(message_id)
        records += len(rewritten)
        await _mark_erased(session, tenant, rewritten, data.erasure_id, now)
        records += await _deliveries(session, target, [m for m, _, _ in messages], now)
        if target.names:
            result = await session.execute(
                update(DigestEntry)
                .where(
                    DigestEntry.tenant_id == tenant,
                    DigestEntry.mentee_name.in_(sorted(target.names)),
                    DigestEntry.goal_id.in_(list(data.goal_ids)),
                )
                .values(mentee_name=ERASED_NAME)
            )
            records += int(getattr(result, "rowcount", 0) or 0)
        records += await scrub_platform(session, target, tenant, data.goal_ids)
        return records


async def _suppress(
    session: AsyncSession, tenant: str, key: str, erasure_id: str, now: datetime_type
) -> None:
    known = await session.scalar(
        select(Suppression.person_key).where(
            Suppression.tenant_id == tenant, Suppression.person_key == key
        )
    )
    if known is None:
        session.add(
            Suppression(tenant_id=tenant, person_key=key, erasure_id=erasure_id, created_at=now)
        )
        await session.flush()


async def _mark_erased(
    session: AsyncSession,
    tenant: str,
    message_ids: list[str],
    erasure_id: str,
    now: datetime_type,
) -> None:
    if not message_ids:
        return
    known = set(
        (
            await session.execute(
                select(ErasedMessage.message_id).where(ErasedMessage.message_id.in_(message_ids))
            )
        ).scalars()
    )
    session.add_all(
        ErasedMessage(message_id=m, tenant_id=tenant, erasure_id=erasure_id, erased_at=now)
        for m in message_ids
        if m not in known
    )
    await session.flush()


async def _deliveries(
    session: AsyncSession, target: Target, message_ids: list[str], now: datetime_type
) -> int:
    """Email deliveries to the person lose the address (unsent ones are cancelled); attempts too."""
    if not message_ids:
        return 0
    changed = 0
    rows = list(
        (
            await session.execute(select(Delivery).where(Delivery.message_id.in_(message_ids)))
        ).scalars()
    )
    for delivery in rows:
        if delivery.recipient is not None and target.names_person(delivery.recipient):
            delivery.recipient = target.scrub(delivery.recipient)
            if delivery.status == PENDING:
                delivery.status = CANCELLED
                delivery.next_attempt_at = None
                delivery.last_error = "recipient erased"
                delivery.updated_at = now
            changed += 1
        elif delivery.last_error and target.mentions(delivery.last_error):
            delivery.last_error = target.scrub_text(delivery.last_error)
            changed += 1
    attempts = await session.execute(
        select(Attempt.id, Attempt.error, Attempt.response_excerpt).where(
            Attempt.delivery_id.in_([d.id for d in rows])
        )
    )
    for attempt_id, error, excerpt in attempts.all():
        if target.mentions(error) or target.mentions(excerpt):
            await session.execute(
                update(Attempt)
                .where(Attempt.id == attempt_id)
                .values(
                    error=target.scrub_text(error) if error else error,
                    response_excerpt=target.scrub_text(excerpt) if excerpt else excerpt,
                )
            )
            changed += 1
    return changed
