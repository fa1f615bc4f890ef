"""Erasing a person from goals, and recording the other services' confirmations.

One transaction per request: every goal the person takes part in gets the
person replaced by a stand-in (``erased-<key>@erased.example``, "Erased
person"), version bumped and ``goal.updated`` emitted, so every consumer's
projection is overwritten by a newer version (an older event redelivered or
replayed loses to it); the goal's stored history, milestone evidence and
progress notes, and the platform tables (outbox, idempotency answers, dead
letters) are rewritten; and ``person.erasure_requested`` goes out naming the
person only by their key. Sessions and notifications each confirm with
``person.erased``; the erasure completes when both have.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.goals import domain
from services.goals.domain import Change, GoalState
from services.goals.events import EventRecorder
from services.goals.models import Erasure, GoalEventRecord, GoalParticipant, ProgressReport
from services.goals.privacy.schemas import ErasureOut, ErasurePart
from services.goals.repository import GoalRepository
from services.goals.work import Work
from shared.clock import Clock
from shared.context import new_id
from shared.db.database import Database
from shared.events.catalog.common import Participant
from shared.events.catalog.goals import GoalUpdated
from shared.events.catalog.privacy import (
    PersonErased,
    PersonErasureRequested,
    PersonErasureRequestedData,
)
from shared.events.registry import build_event
from shared.http.problems import ProblemError
from shared.logs import get_logger
from shared.outbox.writer import Outbox
from shared.privacy.keys import ERASED_NAME, normalise_email, person_key
from shared.privacy.platform import scrub_platform
from shared.privacy.scrub import Target

log = get_logger(__name__)
SOURCE = "/followthrough/goals"
OTHER_SERVICES = ("sessions", "notifications")
REASON = "a participant was erased on request"


def erasure_out(row: Erasure) -> ErasureOut:
    return ErasureOut(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        reference=row.reference,
        requested_at=row.requested_at,
        completed_at=row.completed_at,
        broker_copies_expire_at=row.broker_copies_expire_at,
        services={
            name: ErasurePart.model_validate(part)  # type: ignore[misc]
            for name, part in row.parts.items()
        },
    )


class ErasureService:
    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        clock: Clock,
        *,
        privacy_key: str,
        topic_retention: timedelta,
    ) -> None:
        self._db = database
        self._outbox = outbox
        self._recorder = EventRecorder(outbox)
        self._clock = clock
        self._secret = privacy_key
        self._retention = topic_retention

    def key_of(self, tenant_id: str, email: str) -> str:
        return person_key(self._secret, tenant_id, email)

    async def request(
        self, tenant_id: str, email: str, reference: str | None
    ) -> tuple[ErasureOut, bool]:
        """Erase the person here and ask the others to; False when an erasure already covers it.

        Asking again for a person already erased (and not named again since)
        answers the earlier erasure: nothing is held to erase, no event is sent.
        """
        address = normalise_email(email)
        key = self.key_of(tenant_id, address)
        async with self._db.transaction() as session:
            goal_ids = await self._goals_naming(session, tenant_id, address)
            previous = await self._latest(session, tenant_id, key)
            if previous is not None and not goal_ids:
                return erasure_out(previous), False
            now = self._clock.now()
            work = Work(GoalRepository(session), now)
            target = Target(key, {address})
            records = await self._erase_goals(session, work, tenant_id, goal_ids, target)
            records += await self._scrub_history(session, tenant_id, goal_ids, target)
            records += await scrub_platform(session, target, tenant_id, goal_ids)
            await work.repository.save(work.states)
            await self._recorder.record(session, work.events)
            row = Erasure(
                id=new_id(),
                tenant_id=tenant_id,
                person_key=key,
                reference=reference,
                status="in_progress",
                parts={
                    "goals": {"status": "erased", "records": records, "erased_at": now.isoformat()},
                    **{name: {"status": "pending"} for name in OTHER_SERVICES},
                },
                goal_ids=goal_ids,
                requested_at=now,
                completed_at=None,
                broker_copies_expire_at=now + self._retention,
            )
            session.add(row)
            event = build_event(
                PersonErasureRequested,
                PersonErasureRequestedData(
                    erasure_id=row.id,
                    person_key=key,
                    reference=reference,
                    goal_ids=goal_ids,
                    requested_at=now,
                    broker_copies_expire_at=row.broker_copies_expire_at,
                ),
                tenant_id=tenant_id,
                partition_key=row.id,
                source=SOURCE,
                subject=f"erasures/{row.id}",
                time=now,
            )
            await self._outbox.add(session, [event])
            await session.flush()
            out = erasure_out(row)
        log.info("privacy.erasure.requested", erasure_id=out.id, goals=len(goal_ids))
        return out, True

    async def get(self, tenant_id: str, erasure_id: str) -> ErasureOut:
        async with self._db.reader() as session:
            row = await session.scalar(
                select(Erasure).where(Erasure.tenant_id == tenant_id, Erasure.id == erasure_id)
            )
        if row is None:
            raise ProblemError(404, f"erasure {erasure_id} not found", slug="not-found")
        return erasure_out(row)

    async def confirm(self, session: AsyncSession, event: PersonErased) -> bool:
        """Record one service's ``person.erased``; True when it completed the erasure."""
        data = event.data
        row = await session.scalar(
            select(Erasure)
            .where(Erasure.tenant_id == event.tenantid, Erasure.id == data.erasure_id)
            .with_for_update()
        )
        if row is None or data.service not in OTHER_SERVICES or data.person_key != row.person_key:
            log.warning("privacy.erasure.unknown_confirmation", erasure_id=data.erasure_id)
            return False
        parts: dict[str, Any] = {
            **row.parts,
            data.service: {
                "status": "erased",
                "records": data.records,
                "erased_at": data.erased_at.isoformat(),
            },
        }
        row.parts = parts
        if row.status != "completed" and all(
            part.get("status") == "erased" for part in parts.values()
        ):
            row.status = "completed"
            row.completed_at = self._clock.now()
            log.info("privacy.erasure.completed", erasure_id=row.id)
            return True
        return False

    # -- what goals holds -------------------------------------------------------

    async def _goals_naming(self, session: AsyncSession, tenant_id: str, email: str) -> list[str]:
        rows = await session.execute(
            select(GoalParticipant.goal_id)
            .where(GoalParticipant.tenant_id == tenant_id, GoalParticipant.email == email)
            .distinct()
        )
        return sorted(str(goal_id) for goal_id in rows.scalars())

    async def _latest(self, session: AsyncSession, tenant_id: str, key: str) -> Erasure | None:
        result: Erasure | None = await session.scalar(
            select(Erasure)
            .where(Erasure.tenant_id == tenant_id, Erasure.person_key == key)
            .order_by(Erasure.requested_at.desc())
            .limit(1)
        )
        return result

    async def _erase_goals(
        self,
        session: AsyncSession,
        work: Work,
        tenant_id: str,
        goal_ids: list[str],
        target: Target,
    ) -> int:
        states = await work.repository.load_many(tenant_id, ids=goal_ids, for_update=True)
        for state in states:
            _anonymise(state, target)
            domain.touch(state, work.now)
            work.emit(state, Change(GoalUpdated, reason=REASON))
        return len(states)

    async def _scrub_history(
        self, session: AsyncSession, tenant_id: str, goal_ids: list[str], target: Target
    ) -> int:
        """The goals' stored events and progress notes, rewritten where they name the person."""
        if not goal_ids:
            return 0
        changed = 0
        events = await session.execute(
            select(GoalEventRecord.seq, GoalEventRecord.payload).where(
                GoalEventRecord.tenant_id == tenant_id, GoalEventRecord.goal_id.in_(goal_ids)
            )
        )
        for seq, payload in events.all():
            if target.mentions(payload):
                await session.execute(
                    update(GoalEventRecord)
                    .where(GoalEventRecord.seq == seq)
                    .values(payload=target.scrub_bytes(payload))
                )
                changed += 1
        notes = await session.execute(
            select(ProgressReport.id, ProgressReport.note).where(
                ProgressReport.tenant_id == tenant_id,
                ProgressReport.goal_id.in_(goal_ids),
                ProgressReport.note.is_not(None),
            )
        )
        for report_id, note in notes.all():
            if target.mentions(note):
                await session.execute(
                    update(ProgressReport)
                    .where(ProgressReport.id == report_id)
                    .values(note=target.scrub_text(note or ""))
                )
                changed += 1
        return changed


def _anonymise(state: GoalState, target: Target) -> None:
    """The person replaced by the stand-in on one goal (and the address masked in its texts)."""
    people: list[Participant] = []
    for person in state.participants:
        if normalise_email(str(person.email)) in target.emails:
            target.names.add(person.name)
            person = person.model_copy(update={"email": target.stand_in, "name": ERASED_NAME})
        people.append(person)
    state.participants = people
    state.participants_changed = True
    state.goal.participants = [p.model_dump(mode="json") for p in people]
    if state.goal.description:
        state.goal.description = target.scrub_text(state.goal.description)
    for milestone in state.milestones:
        if milestone.evidence_note:
            milestone.evidence_note = target.scrub_text(milestone.evidence_note)


__all__ = ["ErasureService", "PersonErased", "erasure_out"]
