"""Planning a goal's schedule: the next occurrence and its timers, nothing further ahead.

Rules applied here (docs/sessions.md has the full list):

* only the next occurrence exists; the one after is planned when it
  completes or is missed, from the previous one's nominal local time;
* a reminder (``checkin.due_soon``) is planned per lead time, moved out of
  quiet hours to the moment they end, dropped when that is already past at
  planning time or not before the deadline, and sent once when two land on
  the same instant;
* the miss timer sits at due + grace (+ snooze) and is never moved by quiet
  hours;
* a check-in window opens ``checkin_window_minutes`` before the due time but
  never before the previous occurrence's deadline;
* a policy change re-plans only an occurrence not yet due; pause, completion
  and abandonment cancel the open occurrence and every unfired check-in
  timer (escalations included); resume plans the first occurrence after now,
  so nothing that came due while paused is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from services.sessions import recurrence
from services.sessions.events import goal_ref, occurrence_id, timed_event_id
from services.sessions.models import GoalProjection, Occurrence
from services.sessions.repository import NewOccurrence, SessionsRepository
from services.sessions.risk import overdue_milestones, score
from services.sessions.settings import SessionsSettings
from services.sessions.timers.repository import NewTimer, TimerRepository
from shared.events.catalog.common import Participant
from shared.events.catalog.goals import GoalSnapshot
from shared.events.catalog.policy import CheckinPolicy
from shared.events.catalog.sessions import GoalRef, Risk
from shared.events.envelope import CloudEvent
from shared.logs import get_logger

log = get_logger(__name__)

DUE_SOON = "checkin.due_soon"
MISSED = "checkin.missed"
ESCALATED = "checkin.escalated"
SESSION_REMINDER = "session.reminder"
CHECKIN_TIMER_KINDS = (DUE_SOON, MISSED, ESCALATED)


@dataclass(frozen=True, slots=True)
class Rules:
    """The service-wide schedule rules, from settings."""

    window: timedelta = timedelta(hours=12)
    escalation_delay: timedelta = timedelta(hours=1)
    late_after: timedelta = timedelta(minutes=1)
    future_skew: timedelta = timedelta(minutes=5)
    snooze_max_minutes: int = 1440
    snooze_default_minutes: int = 60

    @classmethod
    def from_settings(cls, settings: SessionsSettings) -> Rules:
        return cls(
            window=timedelta(minutes=settings.checkin_window_minutes),
            escalation_delay=timedelta(minutes=settings.escalation_delay_minutes),
            late_after=timedelta(seconds=settings.scheduler_late_after_seconds),
            future_skew=timedelta(seconds=settings.checkin_future_skew_seconds),
            snooze_max_minutes=settings.snooze_max_minutes,
            snooze_default_minutes=settings.snooze_default_minutes,
        )


@dataclass
class GoalContext:
    """A locked goal row with its parsed snapshot."""

    row: GoalProjection
    snapshot: GoalSnapshot

    @classmethod
    def of(cls, row: GoalProjection) -> GoalContext:
        """Parse the stored snapshot; one whose policy no longer validates plans nothing more.

        The policy model rejects an RRULE whose UNTIL has passed, a check that
        depends on today's date; a stored snapshot must never become a poison
        row for the scheduler because of it, and such a rule is over anyway.
        """
        # Participants were validated when the event arrived; re-checking every
        # e-mail address on each timer fired was the scheduler's largest cost.
        data = {
            **row.snapshot,
            "participants": [
                Participant.model_construct(**p) for p in row.snapshot["participants"]
            ],
        }
        try:
            return cls(row, GoalSnapshot.model_validate(data))
        except ValidationError as error:
            log.warning("sessions.goal.policy_unreadable", goal_id=row.goal_id, error=str(error))
            return cls(row, GoalSnapshot.model_validate({**data, "policy": None}))

    @property
    def goal_id(self) -> str:
        return self.row.goal_id

    @property
    def tenant_id(self) -> str:
        return self.row.tenant_id

    @property
    def policy(self) -> CheckinPolicy | None:
        return self.snapshot.policy

    @property
    def active(self) -> bool:
        return self.row.schedule_state == "active" and self.snapshot.policy is not None

    def ref(self) -> GoalRef:
        return goal_ref(self.snapshot)

    def today(self, now: datetime) -> date:
        return now.astimezone(recurrence.zone_of(self.snapshot.timezone)).date()

    def risk(self, now: datetime) -> Risk:
        return score(
            consecutive_misses=self.row.consecutive_misses,
            last_checkin_at=self.row.last_checkin_at,
            started_at=self.row.started_at,
            overdue=overdue_milestones(self.snapshot.milestones, self.today(now), now),
            ratings=list(self.row.ratings or []),
            now=now,
        )


@dataclass
class Planner:
    """Changes to goals' timelines inside one transaction; collects the events they cause."""

    repo: SessionsRepository
    timers: TimerRepository
    rules: Rules
    now: datetime
    events: list[CloudEvent] = field(default_factory=list)
    timers_changed: bool = False

    async def flush(self) -> None:
        """Write the planned occurrences, then the planned timers: before the commit."""
        await self.repo.write_planned()
        await self.timers.flush()

    # Reacting to goal snapshots ----------------------------------------------

    async def reconcile(
        self, goal: GoalContext, previous_policy: CheckinPolicy | None, *, fresh: bool = False
    ) -> None:
        """Bring the schedule in line with the goal's (new) snapshot.

        ``fresh`` says the goal was first seen in this transaction, so it has no
        occurrences yet and the queries looking for them can be skipped.
        """
        row, snapshot = goal.row, goal.snapshot
        wanted = snapshot.status == "active" and snapshot.policy is not None
        state = row.schedule_state
        if not wanted:
            if state == "active":
                await self.cancel_schedule(goal)
            if snapshot.status in ("completed", "abandoned"):
                row.schedule_state = "ended"
            elif state == "active":
                row.schedule_state = "paused" if snapshot.policy is not None else "none"
            return
        policy = snapshot.policy
        assert policy is not None
        if state != "active":
            if state != "paused" or row.anchor_date is None:
                row.anchor_date = policy.starts_on or goal.today(self.now)
                row.started_at = self.now
            row.schedule_state = "active"
            log.debug("sessions.schedule.started", goal_id=goal.goal_id, previous_state=state)
            if fresh or await self.repo.open_occurrence(goal.goal_id) is None:
                await self.plan_first(goal, fresh=fresh)
            return
        if previous_policy is not None and _same_plan(previous_policy, policy):
            return
        row.anchor_date = policy.starts_on or goal.today(self.now)
        current = await self.repo.open_occurrence(goal.goal_id)
        if current is not None and current.due_at > self.now:
            await self.drop_open(goal, current)
            current = None
        log.info("sessions.schedule.replanned", goal_id=goal.goal_id)
        if current is None:
            await self.plan_first(goal)

    async def cancel_schedule(self, goal: GoalContext) -> None:
        current = await self.repo.open_occurrence(goal.goal_id)
        if current is not None:
            await self.drop_open(goal, current)
        cancelled = await self.timers.cancel(goal_id=goal.goal_id, kinds=CHECKIN_TIMER_KINDS)
        self.timers_changed = True
        log.info("sessions.schedule.cancelled", goal_id=goal.goal_id, timers=len(cancelled))

    async def drop_open(self, goal: GoalContext, current: Occurrence) -> None:
        """Remove an open occurrence nobody checked in for, and its timers."""
        await self.timers.cancel(occurrence_id=current.id)
        await self.repo.delete_occurrence(current)
        goal.row.next_sequence = current.sequence
        self.timers_changed = True

    # Planning ------------------------------------------------------------------

    async def plan_first(self, goal: GoalContext, *, fresh: bool = False) -> NewOccurrence | None:
        """The first occurrence due after now (and after anything already planned)."""
        policy = goal.policy
        if policy is None or goal.row.anchor_date is None:
            return None
        after = self.now
        latest = None if fresh else await self.repo.latest_occurrence(goal.goal_id)
        if latest is not None and latest.due_at > after:
            after = latest.due_at
        planned = recurrence.first_due_after(policy, goal.row.anchor_date, after)
        return await self._create(goal, policy, planned, latest)

    async def plan_next(self, goal: GoalContext, previous: Occurrence) -> NewOccurrence | None:
        """The occurrence after ``previous``, even if it is already due (catch-up)."""
        policy = goal.policy
        if not goal.active or policy is None or goal.row.anchor_date is None:
            return None
        nominal = datetime.fromisoformat(previous.nominal_local)
        last = recurrence.PlannedTime(nominal, previous.due_at, nominal)
        same_rule = previous.rule == recurrence.describe_rule(policy)
        if same_rule:
            planned = recurrence.next_after(policy, goal.row.anchor_date, last)
        else:
            planned = recurrence.first_due_after(policy, goal.row.anchor_date, previous.due_at)
        return await self._create(goal, policy, planned, previous)

    async def _create(
        self,
        goal: GoalContext,
        policy: CheckinPolicy,
        planned: recurrence.PlannedTime | None,
        previous: Occurrence | None,
    ) -> NewOccurrence | None:
        if planned is None:
            log.info("sessions.schedule.exhausted", goal_id=goal.goal_id)
            return None
        due = planned.due_at
        deadline = due + timedelta(minutes=policy.grace_minutes)
        opens = due - self.rules.window
        if previous is not None and previous.deadline_at > opens:
            opens = min(previous.deadline_at, due)
        occurrence = NewOccurrence(
            id=occurrence_id(goal.goal_id, due),
            tenant_id=goal.tenant_id,
            goal_id=goal.goal_id,
            sequence=goal.row.next_sequence,
            due_at=due,
            nominal_local=recurrence.format_local(planned.nominal),
            local_due=recurrence.format_local(planned.local),
            timezone=policy.timezone,
            opens_at=opens,
            deadline_at=deadline,
            grace_minutes=policy.grace_minutes,
            rule=recurrence.describe_rule(policy)[:600],
            dst_decision=planned.dst_decision,
            created_at=self.now,
        )
        goal.row.next_sequence += 1
        self.repo.plan_occurrence(occurrence)
        self.timers.insert(self._occurrence_timers(goal, policy, occurrence))
        self.timers_changed = True
        return occurrence

    def _occurrence_timers(
        self, goal: GoalContext, policy: CheckinPolicy, occurrence: NewOccurrence
    ) -> list[NewTimer]:
        timers: list[NewTimer] = []
        for reminder in reminder_times(policy, occurrence.due_at, occurrence.deadline_at):
            if reminder.at <= self.now:
                continue
            timers.append(
                NewTimer(
                    id=timed_event_id(goal.goal_id, occurrence.due_at, DUE_SOON, reminder.lead),
                    tenant_id=goal.tenant_id,
                    goal_id=goal.goal_id,
                    kind=DUE_SOON,
                    level=reminder.lead,
                    due_at=reminder.at,
                    occurrence_id=occurrence.id,
                    note=reminder.note,
                )
            )
        timers.append(self.miss_timer(goal, occurrence))
        return timers

    @staticmethod
    def miss_timer(goal: GoalContext, occurrence: NewOccurrence) -> NewTimer:
        return NewTimer(
            id=timed_event_id(goal.goal_id, occurrence.due_at, MISSED, 0),
            tenant_id=goal.tenant_id,
            goal_id=goal.goal_id,
            kind=MISSED,
            level=0,
            due_at=occurrence.deadline_at,
            occurrence_id=occurrence.id,
        )


@dataclass(frozen=True, slots=True)
class Reminder:
    lead: int
    at: datetime
    note: str | None


def reminder_times(
    policy: CheckinPolicy, due_at: datetime, deadline_at: datetime
) -> list[Reminder]:
    """Each lead time's reminder, moved out of quiet hours; one per instant, before the deadline."""
    found: list[Reminder] = []
    seen: set[datetime] = set()
    for lead in sorted(policy.reminder_lead_minutes, reverse=True):
        shift = recurrence.outside_quiet_hours(
            due_at - timedelta(minutes=lead), policy.quiet_hours, policy.timezone
        )
        if shift.at >= deadline_at or shift.at in seen:
            continue
        seen.add(shift.at)
        found.append(Reminder(lead, shift.at, shift.note))
    return sorted(found, key=lambda reminder: reminder.at)


def escalation_step(policy: CheckinPolicy | None, misses_in_row: int) -> int:
    """The 1-based ladder level reached at this many misses in a row (0: none)."""
    if policy is None:
        return 0
    level = 0
    for index, step in enumerate(policy.escalation, start=1):
        if step.after_misses <= misses_in_row:
            level = index
    return level


def _same_plan(old: CheckinPolicy, new: CheckinPolicy) -> bool:
    """Whether a policy change leaves the dates and timers of occurrences unchanged."""
    fields: set[str] = {
        "cadence",
        "time_of_day",
        "timezone",
        "starts_on",
        "reminder_lead_minutes",
        "grace_minutes",
        "quiet_hours",
    }
    dump: dict[str, Any] = old.model_dump(mode="json", include=fields)
    return dump == new.model_dump(mode="json", include=fields)
