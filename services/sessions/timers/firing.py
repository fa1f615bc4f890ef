"""Firing timers: what each kind of timer changes, and the event it emits.

Called by the scheduler for the timers it claimed, and by the API for one
goal's overdue timers before it applies a check-in, acknowledgement or
snooze (so a check-in that arrives before the scheduler noticed a deadline
still lands after the miss it follows). Either way the caller holds the
goal's lock and marks the timers fired in the same transaction as the
events are written to the outbox.

A miss increments the misses in a row, breaks the streak (``streak.broken``
when there was one), plans an escalation when the ladder's level is reached
(fired ``escalation_delay`` after the deadline, so an acknowledgement can
still stop it; every further miss escalates again at the highest level
reached) and plans the next occurrence. A reminder still pending for an
occurrence that is no longer open (a quiet-hours shift can put one after
the due time) is left in place and fires as a no-op: cancelling it would
cost a round trip per miss on the scheduler's hottest path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.sessions import recurrence
from services.sessions.events import (
    emit,
    occurrence_model,
    occurrence_subject,
    session_model,
    session_subject,
    timed_event_id,
)
from services.sessions.models import CoachingSessionRow, Occurrence, Timer
from services.sessions.timers.planner import (
    DUE_SOON,
    ESCALATED,
    MISSED,
    SESSION_REMINDER,
    GoalContext,
    Planner,
    escalation_step,
)
from services.sessions.timers.repository import NewTimer
from shared import tracing
from shared.context import bound
from shared.events.catalog.sessions import (
    CheckinDueSoon,
    CheckinDueSoonData,
    CheckinEscalated,
    CheckinEscalatedData,
    CheckinMissed,
    CheckinMissedData,
    Reasoning,
    SessionReminder,
    SessionReminderData,
    SessionReminderReasoning,
    StreakBroken,
    StreakBrokenData,
)
from shared.events.envelope import CloudEvent
from shared.logs import get_logger

log = get_logger(__name__)
_NO_SPAN = contextlib.nullcontext()  # while tracing is off (reusable)


@dataclass
class Fired:
    """What one firing pass did, for marking rows and counting metrics."""

    on_time: list[Timer] = field(default_factory=list)
    late: list[Timer] = field(default_factory=list)
    skipped: int = 0

    @property
    def count(self) -> int:
        return len(self.on_time) + len(self.late)


class Firing:
    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.repo = planner.repo
        self.now = planner.now

    async def fire_all(
        self,
        timers: Sequence[Timer],
        goals: dict[str, GoalContext],
        occurrences: dict[str, Occurrence],
        sessions: dict[str, CoachingSessionRow],
    ) -> Fired:
        """Fire ``timers`` (due order) whose goal is in ``goals``; others stay for later."""
        fired = Fired()
        for timer in timers:
            goal = goals.get(timer.goal_id)
            if goal is None:
                continue
            late = self.now - timer.due_at > self.planner.rules.late_after
            occurrence = occurrences.get(timer.occurrence_id or "")
            # The timer's event (its id is the timer's) continues the chain that planned it:
            # its log lines, and whatever it plans in turn, carry that correlation id.
            with (
                bound(
                    correlation_id=timer.correlation_id,
                    tenant_id=timer.tenant_id,
                    event_id=timer.id,
                ),
                _firing_span(timer, late) if tracing.enabled else _NO_SPAN,
            ):
                emitted = await self._fire(timer, goal, occurrence, sessions, late)
                if not emitted:
                    log.info(
                        "sessions.timer.skipped",
                        kind=timer.kind,
                        goal_id=goal.goal_id,
                        timer=timer.id,
                    )
            if not emitted:
                fired.skipped += 1
            (fired.late if late else fired.on_time).append(timer)
        return fired

    async def _fire(
        self,
        timer: Timer,
        goal: GoalContext,
        occurrence: Occurrence | None,
        sessions: dict[str, CoachingSessionRow],
        late: bool,
    ) -> bool:
        if timer.kind == SESSION_REMINDER:
            session = sessions.get(timer.session_id or "")
            return self._session_reminder(timer, goal, session, late)
        if occurrence is None or not goal.active:
            return False
        if timer.kind == DUE_SOON:
            return self._due_soon(timer, goal, occurrence, late)
        if timer.kind == MISSED:
            return await self._missed(timer, goal, occurrence, late)
        if timer.kind == ESCALATED:
            return self._escalated(timer, goal, occurrence, late)
        log.error("sessions.timer.unknown_kind", kind=timer.kind, timer=timer.id)
        return False

    def _reasoning(
        self,
        timer: Timer,
        occurrence: Occurrence,
        late: bool,
        *,
        misses: int = 0,
        level: int = 0,
        lead: int | None = None,
    ) -> Reasoning:
        return Reasoning(
            rule=occurrence.rule,
            local_due=occurrence.local_due,
            timezone=occurrence.timezone,
            grace_minutes=occurrence.grace_minutes,
            occurrence_number=occurrence.sequence,
            consecutive_misses=misses,
            ladder_level=level,
            lead_minutes=lead,
            dst_decision=occurrence.dst_decision,
            quiet_hours_delay=timer.note,
            scheduled_for=timer.due_at,
            fired_at=self.now,
            late=late,
        )

    def _add(
        self, event: CloudEvent, goal: GoalContext, timer: Timer, reasoning: Reasoning
    ) -> None:
        self.planner.events.append(event)
        log.info(
            "sessions.timer.fired",
            kind=timer.kind,
            goal_id=goal.goal_id,
            event_id=event.id,
            reasoning=reasoning.model_dump(mode="json"),
        )

    def _due_soon(
        self, timer: Timer, goal: GoalContext, occurrence: Occurrence, late: bool
    ) -> bool:
        if occurrence.status != "open":
            return False
        reasoning = self._reasoning(
            timer, occurrence, late, misses=goal.row.consecutive_misses, lead=timer.level
        )
        data = CheckinDueSoonData(
            goal=goal.ref(),
            occurrence=occurrence_model(occurrence),
            lead_minutes=timer.level,
            reasoning=reasoning,
            risk=goal.risk(self.now),
        )
        event = emit(
            CheckinDueSoon,
            data,
            tenant_id=goal.tenant_id,
            goal_id=goal.goal_id,
            time=self.now,
            subject=occurrence_subject(goal.goal_id, occurrence.id),
            event_id=timer.id,
            causation_id=timer.causation_id,
        )
        self._add(event, goal, timer, reasoning)
        return True

    async def _missed(
        self, timer: Timer, goal: GoalContext, occurrence: Occurrence, late: bool
    ) -> bool:
        if occurrence.status != "open":
            return False
        row = goal.row
        row.consecutive_misses += 1
        previous_streak = row.current_streak
        row.current_streak = 0
        occurrence.status = "missed"
        occurrence.resolved_at = self.now
        occurrence.misses_in_row = row.consecutive_misses
        level = escalation_step(goal.policy, row.consecutive_misses)
        reasoning = self._reasoning(
            timer, occurrence, late, misses=row.consecutive_misses, level=level
        )
        risk = goal.risk(self.now)
        missed = CheckinMissedData(
            goal=goal.ref(),
            occurrence=occurrence_model(occurrence),
            consecutive_misses=row.consecutive_misses,
            reasoning=reasoning,
            risk=risk,
        )
        subject = occurrence_subject(goal.goal_id, occurrence.id)
        self._add(
            emit(
                CheckinMissed,
                missed,
                tenant_id=goal.tenant_id,
                goal_id=goal.goal_id,
                time=self.now,
                subject=subject,
                event_id=timer.id,
                causation_id=timer.causation_id,
            ),
            goal,
            timer,
            reasoning,
        )
        if previous_streak > 0:
            self.planner.events.append(
                emit(
                    StreakBroken,
                    StreakBrokenData(
                        goal=goal.ref(),
                        previous=previous_streak,
                        longest=row.longest_streak,
                        occurrence=occurrence_model(occurrence),
                    ),
                    tenant_id=goal.tenant_id,
                    goal_id=goal.goal_id,
                    time=self.now,
                    subject=subject,
                    event_id=timed_event_id(goal.goal_id, occurrence.due_at, "streak.broken", 0),
                )
            )
        if level:
            self.planner.timers.insert(
                [
                    NewTimer(
                        id=timed_event_id(goal.goal_id, occurrence.due_at, ESCALATED, level),
                        tenant_id=goal.tenant_id,
                        goal_id=goal.goal_id,
                        kind=ESCALATED,
                        level=level,
                        due_at=timer.due_at + self.planner.rules.escalation_delay,
                        occurrence_id=occurrence.id,
                    )
                ]
            )
            self.planner.timers_changed = True
        await self.planner.plan_next(goal, occurrence)
        return True

    def _escalated(
        self, timer: Timer, goal: GoalContext, occurrence: Occurrence, late: bool
    ) -> bool:
        policy = goal.policy
        if occurrence.acknowledged_at is not None or occurrence.checkin_id is not None:
            return False
        if policy is None or timer.level > len(policy.escalation):
            return False
        step = policy.escalation[timer.level - 1]
        recipients = [p for p in goal.snapshot.participants if p.role in step.notify_roles]
        reasoning = self._reasoning(
            timer, occurrence, late, misses=occurrence.misses_in_row, level=timer.level
        )
        data = CheckinEscalatedData(
            goal=goal.ref(),
            occurrence=occurrence_model(occurrence),
            consecutive_misses=max(1, occurrence.misses_in_row),
            level=timer.level,
            notify_roles=step.notify_roles,
            recipients=recipients,
            reasoning=reasoning,
            risk=goal.risk(self.now),
        )
        event = emit(
            CheckinEscalated,
            data,
            tenant_id=goal.tenant_id,
            goal_id=goal.goal_id,
            time=self.now,
            subject=occurrence_subject(goal.goal_id, occurrence.id),
            event_id=timer.id,
            causation_id=timer.causation_id,
        )
        self._add(event, goal, timer, reasoning)
        return True

    def _session_reminder(
        self,
        timer: Timer,
        goal: GoalContext,
        session: CoachingSessionRow | None,
        late: bool,
    ) -> bool:
        if session is None or session.status != "scheduled":
            return False
        if goal.row.schedule_state in ("paused", "ended") or goal.snapshot.status != "active":
            return False
        zone = goal.snapshot.timezone
        local_start = session.starts_at.astimezone(recurrence.zone_of(zone))
        reasoning = SessionReminderReasoning(
            local_start=recurrence.format_local(local_start),
            timezone=zone,
            lead_minutes=timer.level,
            scheduled_for=timer.due_at,
            fired_at=self.now,
            late=late,
        )
        data = SessionReminderData(
            goal=goal.ref(),
            session=session_model(session),
            lead_minutes=timer.level,
            reasoning=reasoning,
            risk=goal.risk(self.now),
        )
        event = emit(
            SessionReminder,
            data,
            tenant_id=goal.tenant_id,
            goal_id=goal.goal_id,
            time=self.now,
            subject=session_subject(goal.goal_id, session.id),
            event_id=timer.id,
            causation_id=timer.causation_id,
        )
        self.planner.events.append(event)
        log.info(
            "sessions.timer.fired",
            kind=timer.kind,
            goal_id=goal.goal_id,
            event_id=event.id,
            reasoning=reasoning.model_dump(mode="json"),
        )
        return True


def _firing_span(timer: Timer, late: bool) -> contextlib.AbstractContextManager[object]:
    """The firing's span, in the scheduler's trace, linked to the trace that planned it."""
    from shared.tracing.spans import span

    return span(
        f"fire {timer.kind}",
        link=timer.traceparent,
        attributes={
            "followthrough.timer.id": timer.id,
            "followthrough.timer.kind": timer.kind,
            "followthrough.timer.due_at": timer.due_at.isoformat(),
            "followthrough.timer.late": late,
            "followthrough.goal_id": timer.goal_id,
            "followthrough.tenant_id": timer.tenant_id,
            "followthrough.correlation_id": timer.correlation_id or "",
        },
    )


async def fire_timers(
    planner: Planner, timers: Sequence[Timer], goals: dict[str, GoalContext], *, by: str
) -> Fired:
    """Fire timers whose goals the caller has locked, and mark them fired (same transaction)."""
    fired, _ = await _fire(planner, timers, goals)
    await _mark(planner, fired, by)
    return fired


async def fire_claimed(
    planner: Planner, timers: Sequence[Timer], goals: dict[str, GoalContext], *, by: str
) -> Fired:
    """The scheduler pass's :func:`fire_timers`, its rows written by Core statements.

    The pass's session ends with its transaction, so the goal and occurrence
    rows the firing changed are written with one statement per table and
    shape, then detached, instead of through the ORM's unit of work, which
    cost a fifth of a pass of 500 misses (the occurrences and timers it
    planned were never ORM objects: ``Planner.flush`` writes them).
    """
    fired, occurrences = await _fire(planner, timers, goals)
    await planner.repo.write_and_detach([*(goal.row for goal in goals.values()), *occurrences])
    await _mark(planner, fired, by)
    return fired


async def _fire(
    planner: Planner, timers: Sequence[Timer], goals: dict[str, GoalContext]
) -> tuple[Fired, list[Occurrence]]:
    """Fire ``timers``; also returns the occurrences they are about (loaded for the firing)."""
    repo = planner.repo
    occurrences = await repo.occurrences_by_id(t.occurrence_id for t in timers if t.occurrence_id)
    sessions = await repo.coaching_sessions_by_id(t.session_id for t in timers if t.session_id)
    fired = await Firing(planner).fire_all(timers, goals, occurrences, sessions)
    return fired, list(occurrences.values())


async def _mark(planner: Planner, fired: Fired, by: str) -> None:
    await planner.timers.mark_fired(fired.on_time, now=planner.now, by=by, late=False)
    await planner.timers.mark_fired(fired.late, now=planner.now, by=by, late=True)
    await planner.flush()


CATCH_UP_LIMIT = 10_000


async def catch_up(planner: Planner, goal: GoalContext, *, by: str) -> Fired:
    """Fire everything of this (locked) goal that is due, including what firing makes due."""
    total = Fired()
    for _ in range(CATCH_UP_LIMIT):
        due = await planner.timers.due_for_goal(goal.goal_id, planner.now)
        if not due:
            break
        fired = await fire_timers(planner, due, {goal.goal_id: goal}, by=by)
        total.on_time += fired.on_time
        total.late += fired.late
        total.skipped += fired.skipped
    return total
