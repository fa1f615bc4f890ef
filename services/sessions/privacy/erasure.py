"""Sessions erases its part of a person on ``person.erasure_requested`` and says so.

It finds the person by hashing the addresses on the goals the request names
(and on every coaching session of the tenant), then, in one transaction with
the dedupe mark and its ``person.erased``: the projections' snapshots get the
same stand-in goals gave (the version is kept, so goals' own ``goal.updated``
lands on it as the newer one), the check-ins of a goal the person was the
mentee of lose their notes and blockers (the mentee's own words), other
check-in notes, timer notes and coaching sessions are masked, and so are the
outbox, idempotency answers and dead letters. The person's calendar feeds are
deleted (their URLs answer 404 from then on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.models import (
    CalendarFeed,
    Checkin,
    CoachingSessionRow,
    GoalProjection,
    Timer,
)
from shared.clock import Clock
from shared.db.database import Database
from shared.db.tables import outbox
from shared.events.catalog.privacy import PersonErased, PersonErasureRequested
from shared.kafka.consumed import ConsumedEvent, event_scope
from shared.kafka.dedupe import first_deliveries
from shared.logs import get_logger
from shared.outbox.writer import Outbox
from shared.privacy.erasure import PersonFinder, erased_event
from shared.privacy.platform import scrub_platform
from shared.privacy.scrub import Target, participant_emails

log = get_logger(__name__)
CONSUMER = "sessions.privacy"


class SessionsErasure:
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
                with event_scope(request):
                    assert isinstance(request, PersonErasureRequested)
                    records = await self.erase(session, request)
                    now = self._clock.now()
                    confirmations.append(erased_event(request, "sessions", records, now))
                    log.info("privacy.person.erased", records=records)
            await self._outbox.add(session, confirmations)

    async def erase(self, session: AsyncSession, request: PersonErasureRequested) -> int:
        tenant = request.tenantid
        target = Target(request.data.person_key)
        goal_ids = list(request.data.goal_ids)
        projections = list(
            (
                await session.execute(
                    select(GoalProjection)
                    .where(GoalProjection.tenant_id == tenant, GoalProjection.goal_id.in_(goal_ids))
                    .order_by(GoalProjection.goal_id)
                    .with_for_update()
                )
            ).scalars()
        )
        coaching = list(
            (
                await session.execute(
                    select(CoachingSessionRow).where(CoachingSessionRow.tenant_id == tenant)
                )
            ).scalars()
        )
        for row in projections:
            self._finder.add_matches(target, tenant, participant_emails(row.snapshot))
        for meeting in coaching:
            self._finder.add_matches(target, tenant, participant_emails(meeting.participants))
        feed_owners = await session.execute(
            select(CalendarFeed.email).where(CalendarFeed.tenant_id == tenant).distinct()
        )
        self._finder.add_matches(target, tenant, feed_owners.scalars())
        # Goals' goal.updated may have replaced the projection already (the person is then the
        # stand-in there): the events sessions emitted about the goal still name the address.
        for payload in await _outbox_payloads(session, goal_ids):
            with contextlib.suppress(orjson.JSONDecodeError):
                self._finder.add_matches(target, tenant, participant_emails(orjson.loads(payload)))
        records = 0
        mentee_of: list[str] = []
        for row in projections:
            if _is_mentee(row.snapshot, target):
                mentee_of.append(row.goal_id)
            cleaned = target.scrub(row.snapshot)
            if cleaned != row.snapshot:
                row.snapshot = cleaned
                records += 1
        for meeting in coaching:
            cleaned_people = target.scrub(meeting.participants)
            if cleaned_people != meeting.participants:
                meeting.participants = cleaned_people
                records += 1
        if mentee_of:
            result = await session.execute(
                update(Checkin)
                .where(Checkin.tenant_id == tenant, Checkin.goal_id.in_(mentee_of))
                .values(notes=None, blockers=[])
            )
            records += int(getattr(result, "rowcount", 0) or 0)
        if target.emails:
            # Their calendar feeds go: the URLs answer 404 from now on.
            feeds = await session.execute(
                delete(CalendarFeed).where(
                    CalendarFeed.tenant_id == tenant, CalendarFeed.email.in_(target.emails)
                )
            )
            records += int(getattr(feeds, "rowcount", 0) or 0)
        records += await _mask_texts(session, target, tenant, goal_ids)
        records += await scrub_platform(session, target, tenant, goal_ids)
        return records


def _is_mentee(snapshot: dict[str, Any], target: Target) -> bool:
    """Whether the person (by address, or as goals' stand-in already) is the goal's mentee."""
    return any(
        person.get("role") == "mentee"
        and (target.names_person(person) or person.get("email") == target.stand_in)
        for person in snapshot.get("participants") or []
        if isinstance(person, dict)
    )


async def _outbox_payloads(session: AsyncSession, goal_ids: list[str]) -> list[bytes]:
    if not goal_ids:
        return []
    rows = await session.execute(select(outbox.c.payload).where(outbox.c.key.in_(goal_ids)))
    return [bytes(payload) for payload in rows.scalars()]


async def _mask_texts(
    session: AsyncSession, target: Target, tenant: str, goal_ids: list[str]
) -> int:
    """Check-in and timer notes of the goals that mention the address."""
    changed = 0
    checkins = await session.execute(
        select(Checkin.id, Checkin.notes, Checkin.blockers).where(
            Checkin.tenant_id == tenant, Checkin.goal_id.in_(goal_ids)
        )
    )
    for checkin_id, notes, blockers in checkins.all():
        if target.mentions(notes) or any(target.mentions(b) for b in blockers or []):
            await session.execute(
                update(Checkin)
                .where(Checkin.id == checkin_id)
                .values(
                    notes=target.scrub_text(notes) if notes else notes,
                    blockers=[target.scrub_text(b) for b in blockers or []],
                )
            )
            changed += 1
    timers = await session.execute(
        select(Timer.id, Timer.note).where(
            Timer.tenant_id == tenant, Timer.goal_id.in_(goal_ids), Timer.note.is_not(None)
        )
    )
    for timer_id, note in timers.all():
        if target.mentions(note):
            await session.execute(
                update(Timer).where(Timer.id == timer_id).values(note=target.scrub_text(note or ""))
            )
            changed += 1
    return changed
