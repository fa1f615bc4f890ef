"""Coaching sessions: scheduled, reminded at their lead times, then held, no-show or cancelled.

Reminders are timers like the check-in ones (``session.reminder``, id
derived from the session, its start and the lead time); they are not moved
by quiet hours, since the session's time was agreed by the people in it,
and they are not sent while the goal is paused or closed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from services.sessions.events import emit, session_model, session_subject, timed_event_id
from services.sessions.models import CoachingSessionRow
from services.sessions.repository import SessionsRepository
from services.sessions.schemas import SessionCreate, SessionOut, SessionReschedule
from services.sessions.timers.planner import SESSION_REMINDER
from services.sessions.timers.repository import NewTimer
from services.sessions.timers.timeline import CLOSED_STATUSES, GoalTimeline, field_problem
from shared.events.catalog.common import Participant
from shared.events.catalog.sessions import (
    SessionCancelled,
    SessionEventData,
    SessionHeld,
    SessionNoShow,
    SessionRescheduled,
    SessionScheduled,
)
from shared.events.envelope import CloudEvent
from shared.http.problems import ProblemError
from shared.logs import get_logger

log = get_logger(__name__)

Outcome = Literal["held", "no_show", "cancelled"]
_EVENTS: dict[Outcome, type[CloudEvent]] = {
    "held": SessionHeld,
    "no_show": SessionNoShow,
    "cancelled": SessionCancelled,
}


def _session_not_found(session_id: str) -> ProblemError:
    return ProblemError(404, f"session {session_id} not found", slug="not-found")


class CoachingService(GoalTimeline):
    async def schedule(self, tenant_id: str, payload: SessionCreate) -> SessionOut:
        now = self.now()
        if payload.starts_at <= now:
            raise field_problem(
                422, "body.starts_at", "must be in the future", slug="validation-error"
            )
        async with self.change(tenant_id, payload.goal_id, now=now) as (planner, goal):
            if goal.snapshot.status in CLOSED_STATUSES:
                raise ProblemError(
                    409,
                    f"goal is {goal.snapshot.status}; sessions cannot be scheduled",
                    slug="goal-closed",
                    goal_status=goal.snapshot.status,
                )
            participants = payload.participants or goal.snapshot.participants
            row = CoachingSessionRow(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                goal_id=goal.goal_id,
                starts_at=payload.starts_at,
                duration_minutes=payload.duration_minutes,
                participants=[p.model_dump(mode="json") for p in participants],
                location=payload.location,
                link=str(payload.link) if payload.link else None,
                status="scheduled",
                reminder_lead_minutes=sorted(payload.reminder_lead_minutes, reverse=True),
                created_at=now,
                updated_at=now,
            )
            planner.repo.add(row)
            timers = _reminders(row, now)
            planner.timers.insert(timers)
            planner.timers_changed = True
            planner.events.append(
                emit(
                    SessionScheduled,
                    SessionEventData(goal=goal.ref(), session=session_model(row)),
                    tenant_id=tenant_id,
                    goal_id=goal.goal_id,
                    time=now,
                    subject=session_subject(goal.goal_id, row.id),
                )
            )
            log.info(
                "sessions.session.scheduled",
                goal_id=goal.goal_id,
                session_id=row.id,
                reminders=len(timers),
            )
        return session_out(row)

    async def get(self, tenant_id: str, session_id: str) -> SessionOut:
        async with self._db.reader() as session:
            row = await SessionsRepository(session).coaching_session(tenant_id, session_id)
        if row is None:
            raise _session_not_found(session_id)
        return session_out(row)

    async def conclude(self, tenant_id: str, session_id: str, outcome: Outcome) -> SessionOut:
        """Mark a scheduled session held, no-show or cancelled; the others are final."""
        async with self._db.reader() as session:
            found = await SessionsRepository(session).coaching_session(tenant_id, session_id)
        if found is None:
            raise _session_not_found(session_id)
        async with self.change(tenant_id, found.goal_id) as (planner, goal):
            row = await planner.repo.coaching_session(tenant_id, session_id, for_update=True)
            if row is None:
                raise _session_not_found(session_id)
            if row.status != "scheduled":
                raise ProblemError(
                    409,
                    f"session is {row.status}; only a scheduled session can change",
                    slug="illegal-transition",
                    current_status=row.status,
                )
            if outcome != "cancelled" and planner.now < row.starts_at:
                raise ProblemError(
                    409,
                    "the session has not started yet; it can only be cancelled",
                    slug="not-started",
                )
            row.status = outcome
            row.updated_at = planner.now
            if outcome == "cancelled":
                row.sequence += 1  # the calendar's CANCEL supersedes the last REQUEST
            cancelled = await planner.timers.cancel(session_id=row.id)
            planner.timers_changed = True
            planner.events.append(
                emit(
                    _EVENTS[outcome],
                    SessionEventData(goal=goal.ref(), session=session_model(row)),
                    tenant_id=tenant_id,
                    goal_id=goal.goal_id,
                    time=planner.now,
                    subject=session_subject(goal.goal_id, row.id),
                )
            )
            log.info(
                "sessions.session.concluded",
                goal_id=goal.goal_id,
                session_id=row.id,
                outcome=outcome,
                cancelled_reminders=len(cancelled),
            )
        return session_out(row)

    async def reschedule(
        self, tenant_id: str, session_id: str, payload: SessionReschedule
    ) -> SessionOut:
        """Move a scheduled session: its reminders are re-planned and its SEQUENCE goes up."""
        async with self._db.reader() as session:
            found = await SessionsRepository(session).coaching_session(tenant_id, session_id)
        if found is None:
            raise _session_not_found(session_id)
        async with self.change(tenant_id, found.goal_id) as (planner, goal):
            row = await planner.repo.coaching_session(tenant_id, session_id, for_update=True)
            if row is None:
                raise _session_not_found(session_id)
            if row.status != "scheduled":
                raise ProblemError(
                    409,
                    f"session is {row.status}; only a scheduled session can be rescheduled",
                    slug="illegal-transition",
                    current_status=row.status,
                )
            if payload.starts_at <= planner.now:
                raise field_problem(
                    422, "body.starts_at", "must be in the future", slug="validation-error"
                )
            previous = row.starts_at
            duration = payload.duration_minutes or row.duration_minutes
            if payload.starts_at == previous and duration == row.duration_minutes:
                return session_out(row)  # nothing moves: no new SEQUENCE, no event
            await planner.timers.cancel(session_id=row.id)
            row.starts_at = payload.starts_at
            row.duration_minutes = duration
            row.sequence += 1
            row.updated_at = planner.now
            planner.timers.insert(_reminders(row, planner.now))
            planner.timers_changed = True
            moved = session_model(row).model_copy(update={"previous_starts_at": previous})
            data = SessionEventData(goal=goal.ref(), session=moved)
            planner.events.append(
                emit(
                    SessionRescheduled,
                    data,
                    tenant_id=tenant_id,
                    goal_id=goal.goal_id,
                    time=planner.now,
                    subject=session_subject(goal.goal_id, row.id),
                )
            )
            log.info(
                "sessions.session.rescheduled",
                goal_id=goal.goal_id,
                session_id=row.id,
                sequence=row.sequence,
            )
        return session_out(row)


def _reminders(row: CoachingSessionRow, now: datetime) -> list[NewTimer]:
    return [
        NewTimer(
            id=timed_event_id(row.id, row.starts_at, SESSION_REMINDER, lead),
            tenant_id=row.tenant_id,
            goal_id=row.goal_id,
            kind=SESSION_REMINDER,
            level=lead,
            due_at=row.starts_at - timedelta(minutes=lead),
            session_id=row.id,
        )
        for lead in row.reminder_lead_minutes
        if row.starts_at - timedelta(minutes=lead) > now
    ]


def session_out(row: CoachingSessionRow) -> SessionOut:
    return SessionOut(
        id=row.id,
        goal_id=row.goal_id,
        starts_at=row.starts_at,
        duration_minutes=row.duration_minutes,
        participants=[Participant.model_validate(p) for p in row.participants],
        location=row.location,
        link=row.link,
        status=row.status,  # type: ignore[arg-type]
        reminder_lead_minutes=list(row.reminder_lead_minutes),
        sequence=row.sequence,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
