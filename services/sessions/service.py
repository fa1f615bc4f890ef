"""Check-ins, acknowledgements and snoozes: the domain rules behind the goal routes.

Every change runs in a :class:`~services.sessions.timers.timeline.GoalTimeline`
transaction: the goal locked, everything of it already due fired first.

The check-in window rule: a check-in attaches to the goal's open occurrence
when its ``occurred_at`` lies in that occurrence's window ``[opens_at,
deadline_at]`` (opens ``checkin_window_minutes`` before the due time, never
before the previous deadline) and counts as on time: the occurrence
completes, the streak grows, the misses in a row reset. Otherwise, when the
newest occurrence whose window had opened by then was missed and has no
check-in yet, the check-in is recorded against it as *late*: the miss
stands (streak and misses in a row are unchanged) but its pending
escalations are cancelled. Anything else is recorded as *unscheduled*.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from services.sessions.events import (
    emit,
    goal_subject,
    occurrence_model,
    occurrence_subject,
    timed_event_id,
)
from services.sessions.models import Checkin, Occurrence
from services.sessions.repository import SessionsRepository
from services.sessions.risk import RATINGS_KEPT
from services.sessions.schemas import (
    AcknowledgeOut,
    Adherence,
    CheckinCreate,
    CheckinList,
    CheckinOut,
    OccurrenceOut,
    SnoozeOut,
)
from services.sessions.timers.planner import ESCALATED, MISSED, GoalContext, Planner
from services.sessions.timers.timeline import (
    CLOSED_STATUSES,
    GoalTimeline,
    field_problem,
    not_found,
)
from shared.events.catalog.common import Role
from shared.events.catalog.sessions import (
    CheckinAcknowledged,
    CheckinAcknowledgedData,
    CheckinCompleted,
    CheckinCompletedData,
    CheckinRecord,
    CheckinSnoozed,
    CheckinSnoozedData,
    StreakUpdated,
    StreakUpdatedData,
)
from shared.http.problems import ProblemError
from shared.logs import get_logger

log = get_logger(__name__)


class CheckinService(GoalTimeline):
    async def record(
        self, tenant_id: str, payload: CheckinCreate, *, now: datetime | None = None
    ) -> CheckinOut:
        moment_now = now or self.now()
        occurred = payload.occurred_at or moment_now
        if occurred > moment_now + self.rules.future_skew:
            raise field_problem(
                422, "body.occurred_at", "lies in the future", slug="validation-error"
            )
        async with self.change(tenant_id, payload.goal_id, now=moment_now) as (planner, goal):
            if goal.snapshot.status in CLOSED_STATUSES:
                raise ProblemError(
                    409,
                    f"goal is {goal.snapshot.status}; check-ins are not accepted",
                    slug="goal-closed",
                    goal_status=goal.snapshot.status,
                )
            at = min(occurred, moment_now)
            checkin, occurrence = await self._attach(planner, goal, payload, occurred, at)
        return checkin_out(checkin, occurrence)

    async def _attach(
        self,
        planner: Planner,
        goal: GoalContext,
        payload: CheckinCreate,
        occurred: datetime,
        at: datetime,
    ) -> tuple[Checkin, Occurrence | None]:
        repo, row = planner.repo, goal.row
        occurrence = await repo.open_occurrence(goal.goal_id)
        status = "unscheduled"
        if occurrence is not None and occurrence.opens_at <= at <= occurrence.deadline_at:
            status = "on_time"
        else:
            occurrence = await repo.latest_resolved_opened_by(goal.goal_id, at)
            if (
                occurrence is not None
                and occurrence.status == "missed"
                and not occurrence.checkin_id
            ):
                status = "late"
            else:
                occurrence = None
        checkin = Checkin(
            id=str(uuid.uuid4()),
            tenant_id=goal.tenant_id,
            goal_id=goal.goal_id,
            occurred_at=occurred,
            recorded_at=planner.now,
            rating=payload.rating,
            notes=payload.notes,
            blockers=list(payload.blockers),
            source=payload.source,
            status=status,
            occurrence_id=occurrence.id if occurrence else None,
        )
        repo.add(checkin)
        if row.last_checkin_at is None or occurred > row.last_checkin_at:
            row.last_checkin_at = occurred
        if payload.rating is not None:
            row.ratings = [*list(row.ratings or []), payload.rating][-RATINGS_KEPT:]
        if occurrence is not None:
            occurrence.checkin_id = checkin.id
        if status == "on_time":
            assert occurrence is not None
            occurrence.status = "completed"
            occurrence.resolved_at = planner.now
            row.current_streak += 1
            row.longest_streak = max(row.longest_streak, row.current_streak)
            row.consecutive_misses = 0
            await planner.timers.cancel(occurrence_id=occurrence.id)
            await planner.plan_next(goal, occurrence)
        elif status == "late":
            assert occurrence is not None
            await planner.timers.cancel(occurrence_id=occurrence.id, kinds=[ESCALATED])
        record = CheckinRecord(
            checkin_id=checkin.id,
            occurred_at=occurred,
            rating=payload.rating,
            notes=payload.notes,
            blockers=list(payload.blockers),
            source=payload.source,
            late=status == "late",
            occurrence_id=checkin.occurrence_id,
        )
        subject = (
            occurrence_subject(goal.goal_id, occurrence.id)
            if occurrence
            else goal_subject(goal.goal_id)
        )
        planner.events.append(
            emit(
                CheckinCompleted,
                CheckinCompletedData(
                    goal=goal.ref(),
                    checkin=record,
                    occurrence=occurrence_model(occurrence) if occurrence else None,
                    risk=goal.risk(planner.now),
                ),
                tenant_id=goal.tenant_id,
                goal_id=goal.goal_id,
                time=planner.now,
                subject=subject,
            )
        )
        if status == "on_time":
            planner.events.append(
                emit(
                    StreakUpdated,
                    StreakUpdatedData(
                        goal=goal.ref(), current=row.current_streak, longest=row.longest_streak
                    ),
                    tenant_id=goal.tenant_id,
                    goal_id=goal.goal_id,
                    time=planner.now,
                    subject=goal_subject(goal.goal_id),
                )
            )
        log.info(
            "sessions.checkin.recorded",
            goal_id=goal.goal_id,
            checkin_id=checkin.id,
            status=status,
            occurrence_id=checkin.occurrence_id,
        )
        return checkin, occurrence

    async def acknowledge(
        self, tenant_id: str, goal_id: str, *, role: Role, occurrence_id: str | None
    ) -> AcknowledgeOut:
        async with self.change(tenant_id, goal_id) as (planner, goal):
            repo = planner.repo
            if occurrence_id is not None:
                occurrence = await repo.occurrence(goal_id, occurrence_id)
                if occurrence is None:
                    raise ProblemError(
                        404, f"occurrence {occurrence_id} not found", slug="not-found"
                    )
            else:
                occurrence = await repo.latest_missed(goal_id)
                if occurrence is None:
                    raise ProblemError(
                        409, "there is no missed check-in to acknowledge", slug="nothing-missed"
                    )
            if occurrence.status != "missed":
                raise ProblemError(
                    409,
                    f"the check-in is {occurrence.status}; only a missed one can be acknowledged",
                    slug="not-missed",
                )
            if occurrence.acknowledged_at is not None:
                raise ProblemError(
                    409,
                    "this missed check-in was already acknowledged",
                    slug="already-acknowledged",
                    acknowledged_by=occurrence.acknowledged_by,
                )
            occurrence.acknowledged_at = planner.now
            occurrence.acknowledged_by = role
            cancelled = await planner.timers.cancel(occurrence_id=occurrence.id, kinds=[ESCALATED])
            planner.events.append(
                emit(
                    CheckinAcknowledged,
                    CheckinAcknowledgedData(
                        goal=goal.ref(),
                        occurrence=occurrence_model(occurrence),
                        acknowledged_by=role,
                        cancelled_escalations=len(cancelled),
                    ),
                    tenant_id=goal.tenant_id,
                    goal_id=goal_id,
                    time=planner.now,
                    subject=occurrence_subject(goal_id, occurrence.id),
                )
            )
            log.info(
                "sessions.miss.acknowledged",
                goal_id=goal_id,
                occurrence_id=occurrence.id,
                role=role,
                cancelled_escalations=len(cancelled),
            )
        return AcknowledgeOut(
            goal_id=goal_id,
            occurrence=occurrence_out(occurrence),
            acknowledged_by=role,
            cancelled_escalations=len(cancelled),
        )

    async def snooze(
        self, tenant_id: str, goal_id: str, *, minutes: int, occurrence_id: str | None
    ) -> SnoozeOut:
        if minutes > self.rules.snooze_max_minutes:
            raise field_problem(
                422,
                "body.minutes",
                f"must be at most {self.rules.snooze_max_minutes}",
                slug="validation-error",
            )
        async with self.change(tenant_id, goal_id) as (planner, goal):
            occurrence = await planner.repo.open_occurrence(goal_id)
            if occurrence is None or (occurrence_id is not None and occurrence.id != occurrence_id):
                raise ProblemError(
                    409, "only the open check-in can be snoozed", slug="nothing-to-snooze"
                )
            if occurrence.snoozed_minutes:
                raise ProblemError(
                    409,
                    "this check-in was already snoozed once",
                    slug="already-snoozed",
                    deadline_at=occurrence.deadline_at.isoformat(),
                )
            occurrence.deadline_at += timedelta(minutes=minutes)
            occurrence.snoozed_minutes = minutes
            await planner.timers.move(
                timed_event_id(goal_id, occurrence.due_at, MISSED, 0), occurrence.deadline_at
            )
            planner.timers_changed = True
            planner.events.append(
                emit(
                    CheckinSnoozed,
                    CheckinSnoozedData(
                        goal=goal.ref(),
                        occurrence=occurrence_model(occurrence),
                        snoozed_minutes=minutes,
                    ),
                    tenant_id=goal.tenant_id,
                    goal_id=goal_id,
                    time=planner.now,
                    subject=occurrence_subject(goal_id, occurrence.id),
                )
            )
            log.info("sessions.checkin.snoozed", goal_id=goal_id, minutes=minutes)
        return SnoozeOut(
            goal_id=goal_id, occurrence=occurrence_out(occurrence), snoozed_minutes=minutes
        )

    async def goal_title(self, tenant_id: str, goal_id: str) -> str:
        async with self._db.reader() as session:
            row = await SessionsRepository(session).goal(tenant_id, goal_id)
        if row is None:
            raise not_found(goal_id)
        return str(row.snapshot.get("title", ""))

    async def history(
        self, tenant_id: str, goal_id: str, *, limit: int, before: datetime | None
    ) -> CheckinList:
        now = self.now()
        async with self._db.reader() as session:
            repo = SessionsRepository(session)
            row = await repo.goal(tenant_id, goal_id)
            if row is None:
                raise not_found(goal_id)
            goal = GoalContext.of(row)
            checkins = list(await repo.checkins(goal_id, limit=limit + 1, before=before))
            completed, missed, recent = await repo.adherence_counts(
                goal_id, now - timedelta(days=30)
            )
            late = await repo.late_checkins(goal_id)
            occurrences = await repo.occurrences_by_id(
                c.occurrence_id for c in checkins if c.occurrence_id
            )
        page = checkins[:limit]
        resolved = completed + missed
        return CheckinList(
            goal_id=goal_id,
            schedule_state=row.schedule_state,
            adherence=Adherence(
                on_time_rate=round(completed / resolved, 4) if resolved else None,
                completed_on_time=completed,
                missed=missed,
                late_checkins=late,
                current_streak=row.current_streak,
                longest_streak=row.longest_streak,
                consecutive_misses=row.consecutive_misses,
                misses_last_30_days=recent,
            ),
            risk=goal.risk(now),
            checkins=[checkin_out(c, occurrences.get(c.occurrence_id or "")) for c in page],
            next_before=page[-1].occurred_at if len(checkins) > limit else None,
        )


def occurrence_out(row: Occurrence) -> OccurrenceOut:
    return OccurrenceOut(
        id=row.id,
        sequence=row.sequence,
        due_at=row.due_at,
        local_due=row.local_due,
        timezone=row.timezone,
        opens_at=row.opens_at,
        deadline_at=row.deadline_at,
        status=row.status,  # type: ignore[arg-type]
        snoozed_minutes=row.snoozed_minutes,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,  # type: ignore[arg-type]
        dst_decision=row.dst_decision,
    )


def checkin_out(row: Checkin, occurrence: Occurrence | None) -> CheckinOut:
    return CheckinOut(
        id=row.id,
        goal_id=row.goal_id,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        rating=row.rating,
        notes=row.notes,
        blockers=list(row.blockers or []),
        source=row.source,
        status=row.status,  # type: ignore[arg-type]
        late=row.status == "late",
        occurrence_id=row.occurrence_id,
        occurrence=occurrence_out(occurrence) if occurrence else None,
    )
