"""The forecast: what the schedule would send between now and a given time, sending nothing.

It starts from what is really planned (the open occurrence and every unfired
timer, pending escalations and session reminders included) and continues
with occurrences computed from the policy by the same functions that plan
them, so the forecast cannot drift from what the scheduler will do.
Misses and escalations are ``conditional``: they are listed as they would
happen if no check-in came from now on, with the misses in a row counted up
accordingly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from services.sessions import recurrence
from services.sessions.models import Occurrence, Timer
from services.sessions.repository import SessionsRepository
from services.sessions.schemas import Forecast, ForecastItem
from services.sessions.timers.planner import (
    DUE_SOON,
    ESCALATED,
    MISSED,
    SESSION_REMINDER,
    GoalContext,
    escalation_step,
    reminder_times,
)
from services.sessions.timers.repository import TimerRepository
from services.sessions.timers.timeline import GoalTimeline, field_problem, not_found

MAX_HORIZON = timedelta(days=366)
MAX_ITEMS = 500
MAX_OCCURRENCES = 400


class ForecastService(GoalTimeline):
    async def forecast(self, tenant_id: str, goal_id: str, until: datetime | None) -> Forecast:
        now = self.now()
        end = until or now + timedelta(days=30)
        if end <= now:
            raise field_problem(
                422, "query.until", "must be in the future", slug="validation-error"
            )
        if end - now > MAX_HORIZON:
            raise field_problem(
                422, "query.until", "must be at most 366 days ahead", slug="validation-error"
            )
        async with self._db.reader() as session:
            repo = SessionsRepository(session)
            row = await repo.goal(tenant_id, goal_id)
            if row is None:
                raise not_found(goal_id)
            goal = GoalContext.of(row)
            current = await repo.open_occurrence(goal_id)
            timers = await TimerRepository(session).unfired(goal_id=goal_id)
            occurrences = await repo.occurrences_by_id(
                t.occurrence_id for t in timers if t.occurrence_id
            )
            if current is not None:
                occurrences[current.id] = current
            latest = current or await repo.latest_occurrence(goal_id)
        builder = ScheduleBuilder(goal, now, end, self.rules.escalation_delay)
        builder.planned(timers, occurrences, current)
        if goal.active:
            builder.future(latest)
        items = sorted(
            (item for item in builder.items if now < item.at <= end), key=lambda item: item.at
        )
        policy = goal.policy
        return Forecast(
            goal_id=goal_id,
            timezone=goal.snapshot.timezone,
            rule=recurrence.describe_rule(policy) if policy else None,
            schedule_state=row.schedule_state,
            generated_at=now,
            until=end,
            items=items[:MAX_ITEMS],
            truncated=len(items) > MAX_ITEMS or builder.truncated,
        )


class ScheduleBuilder:
    def __init__(
        self, goal: GoalContext, now: datetime, end: datetime, escalation_delay: timedelta
    ) -> None:
        self.goal = goal
        self.now = now
        self.end = end
        self.delay = escalation_delay
        self.zone = recurrence.zone_of(goal.snapshot.timezone)
        self.items: list[ForecastItem] = []
        self.misses = goal.row.consecutive_misses
        self.truncated = False

    def _local(self, moment: datetime) -> str:
        return recurrence.format_local(moment.astimezone(self.zone))

    def _item(self, kind: str, at: datetime, **fields: object) -> None:
        self.items.append(
            ForecastItem.model_validate(
                {"kind": kind, "at": at, "local_time": self._local(at), **fields}
            )
        )

    def planned(
        self,
        timers: Sequence[Timer],
        occurrences: dict[str, Occurrence],
        current: Occurrence | None,
    ) -> None:
        policy = self.goal.policy
        if current is not None and current.due_at > self.now:
            self._item(
                "checkin.due",
                current.due_at,
                conditional=False,
                occurrence_sequence=current.sequence,
                occurrence_due_at=current.due_at,
                note=current.dst_decision,
            )
        for timer in timers:
            occurrence = occurrences.get(timer.occurrence_id or "")
            sequence = occurrence.sequence if occurrence else None
            due = occurrence.due_at if occurrence else None
            if timer.kind == DUE_SOON:
                self._item(
                    DUE_SOON,
                    timer.due_at,
                    conditional=False,
                    occurrence_sequence=sequence,
                    occurrence_due_at=due,
                    lead_minutes=timer.level,
                    note=timer.note,
                )
            elif timer.kind == MISSED:
                self.misses += 1
                self._item(
                    MISSED,
                    timer.due_at,
                    conditional=True,
                    occurrence_sequence=sequence,
                    occurrence_due_at=due,
                    consecutive_misses=self.misses,
                )
                self._escalation(timer.due_at, sequence, due)
            elif timer.kind == ESCALATED and policy is not None:
                if timer.level <= len(policy.escalation):
                    self._item(
                        ESCALATED,
                        timer.due_at,
                        conditional=True,
                        occurrence_sequence=sequence,
                        occurrence_due_at=due,
                        level=timer.level,
                        notify_roles=policy.escalation[timer.level - 1].notify_roles,
                        consecutive_misses=occurrence.misses_in_row if occurrence else None,
                    )
            elif timer.kind == SESSION_REMINDER and self.goal.snapshot.status == "active":
                self._item(
                    SESSION_REMINDER,
                    timer.due_at,
                    conditional=False,
                    lead_minutes=timer.level,
                    session_id=timer.session_id,
                )

    def _escalation(self, missed_at: datetime, sequence: int | None, due: datetime | None) -> None:
        policy = self.goal.policy
        level = escalation_step(policy, self.misses)
        if not level or policy is None:
            return
        self._item(
            ESCALATED,
            missed_at + self.delay,
            conditional=True,
            occurrence_sequence=sequence,
            occurrence_due_at=due,
            level=level,
            notify_roles=policy.escalation[level - 1].notify_roles,
            consecutive_misses=self.misses,
        )

    def future(self, latest: Occurrence | None) -> None:
        """Occurrences not planned yet, computed exactly as the planner would."""
        policy, anchor = self.goal.policy, self.goal.row.anchor_date
        if policy is None or anchor is None:
            return
        if latest is not None:
            nominal = datetime.fromisoformat(latest.nominal_local)
            previous = recurrence.PlannedTime(nominal, latest.due_at, nominal)
            planned = recurrence.next_after(policy, anchor, previous)
        else:
            planned = recurrence.first_due_after(policy, anchor, self.now)
        sequence = self.goal.row.next_sequence
        count = 0
        while planned is not None and planned.due_at <= self.end:
            count += 1
            if count > MAX_OCCURRENCES:
                self.truncated = True
                return
            deadline = planned.due_at + timedelta(minutes=policy.grace_minutes)
            self._item(
                "checkin.due",
                planned.due_at,
                conditional=False,
                occurrence_sequence=sequence,
                occurrence_due_at=planned.due_at,
                note=planned.dst_decision,
            )
            for reminder in reminder_times(policy, planned.due_at, deadline):
                self._item(
                    DUE_SOON,
                    reminder.at,
                    conditional=False,
                    occurrence_sequence=sequence,
                    occurrence_due_at=planned.due_at,
                    lead_minutes=reminder.lead,
                    note=reminder.note,
                )
            self.misses += 1
            self._item(
                MISSED,
                deadline,
                conditional=True,
                occurrence_sequence=sequence,
                occurrence_due_at=planned.due_at,
                consecutive_misses=self.misses,
            )
            self._escalation(deadline, sequence, planned.due_at)
            sequence += 1
            planned = recurrence.next_after(policy, anchor, planned)
