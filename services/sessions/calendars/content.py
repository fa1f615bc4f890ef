"""What a feed holds, as iCalendar: check-ins as explicit VEVENTs, coaching sessions, alarms.

Check-ins are **explicit instances**, one VEVENT each, never an RRULE: an
RRULE would have to express everything the planner does, and it cannot (two
nominal times landing on one instant in a DST gap count once here but twice
in an RRULE; a reminder moved out of quiet hours differs per instance; a
snooze moves one deadline; a policy change re-anchors the series). Each
instance is computed by the functions that plan it (the forecast's
:class:`~services.sessions.forecast.ScheduleBuilder`), so the feed cannot
disagree with the scheduler; the price is a bounded horizon
(``calendar_horizon_days``, at most ``MAX_CHECKINS`` check-ins per goal).

* UID: the goal and the check-in's number (:func:`shared.ical.checkin_uid`); a
  re-planned check-in keeps its number, so it moves instead of duplicating.
* SEQUENCE: the goal's version, plus one once the check-in was snoozed. Every
  change that can move a check-in (a policy change, pause, resume) is a new
  goal version, so SEQUENCE only ever grows.
* DTSTART is the due time and DTEND the deadline (due + grace + snooze), in
  the goal's zone with its TZID (in UTC for an instant in the second pass of
  a repeated hour, which a TZID time cannot name); a check-in does not block
  free/busy time.
* One VALARM per reminder the scheduler sends: ``-PT<lead>M`` before the start,
  or an absolute UTC trigger when quiet hours moved it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event

from services.sessions import recurrence
from services.sessions.events import session_model
from services.sessions.models import CoachingSessionRow, Occurrence, Timer
from services.sessions.timers.planner import DUE_SOON, GoalContext
from shared.ical import checkin_uid, session_event, wall_time

MAX_CHECKINS = 400
"""Check-ins one goal contributes to a feed, history included."""
MAX_SESSIONS = 200


@dataclass(slots=True)
class Reminder:
    lead: int
    at: datetime


@dataclass(slots=True)
class CheckinInstance:
    sequence: int
    due_at: datetime
    deadline_at: datetime
    state: str
    """open, completed, missed, or planned (computed from the policy, not stored yet)."""
    snoozed: bool = False
    note: str | None = None
    reminders: list[Reminder] = field(default_factory=list)


def stored_instances(
    occurrences: Iterable[Occurrence], timers: Iterable[Timer]
) -> list[CheckinInstance]:
    """History and the open occurrence, with the open one's unfired reminders."""
    found: list[CheckinInstance] = []
    reminders: dict[str, list[Reminder]] = {}
    for timer in timers:
        if timer.kind == DUE_SOON and timer.occurrence_id:
            reminders.setdefault(timer.occurrence_id, []).append(
                Reminder(timer.level, timer.due_at)
            )
    for occurrence in occurrences:
        found.append(
            CheckinInstance(
                sequence=occurrence.sequence,
                due_at=occurrence.due_at,
                deadline_at=occurrence.deadline_at,
                state=occurrence.status,
                snoozed=occurrence.snoozed_minutes > 0,
                note=occurrence.dst_decision,
                reminders=sorted(reminders.get(occurrence.id, []), key=lambda r: r.at),
            )
        )
    return found


def planned_instances(items: Iterable[Any]) -> list[CheckinInstance]:
    """Future check-ins from the forecast's items (``checkin.due``, its reminders and miss)."""
    by_sequence: dict[int, CheckinInstance] = {}
    reminders: dict[int, list[Reminder]] = {}
    deadlines: dict[int, datetime] = {}
    for item in items:
        sequence = item.occurrence_sequence
        if sequence is None:
            continue
        if item.kind == "checkin.due":
            by_sequence[sequence] = CheckinInstance(
                sequence=sequence,
                due_at=item.at,
                deadline_at=item.at,
                state="planned",
                note=item.note,
            )
        elif item.kind == DUE_SOON and item.lead_minutes is not None:
            reminders.setdefault(sequence, []).append(Reminder(item.lead_minutes, item.at))
        elif item.kind == "checkin.missed":
            deadlines[sequence] = item.at
    for sequence, instance in by_sequence.items():
        instance.deadline_at = deadlines.get(sequence, instance.due_at)
        instance.reminders = sorted(reminders.get(sequence, []), key=lambda r: r.at)
    return [by_sequence[key] for key in sorted(by_sequence)]


def add_checkins(
    calendar: Calendar, goal: GoalContext, instances: Sequence[CheckinInstance]
) -> None:
    snapshot = goal.snapshot
    zone_name = snapshot.policy.timezone if snapshot.policy else snapshot.timezone
    zone = ZoneInfo(zone_name)
    rule = recurrence.describe_rule(snapshot.policy) if snapshot.policy else None
    for instance in instances[:MAX_CHECKINS]:
        event = Event()
        event.add("uid", checkin_uid(goal.tenant_id, goal.goal_id, instance.sequence))
        event.add("sequence", goal.row.version + (1 if instance.snoozed else 0))
        event.add("dtstamp", goal.row.updated_at.astimezone(UTC))
        event.add("dtstart", wall_time(instance.due_at, zone_name))
        event.add("dtend", wall_time(max(instance.deadline_at, instance.due_at), zone_name))
        event.add("summary", f"Check-in: {snapshot.title}")
        event.add("status", "CONFIRMED")
        event.add("transp", "TRANSPARENT")
        event.add("categories", ["Check-in"])
        deadline = instance.deadline_at.astimezone(zone)
        lines = [
            f"Check-in {instance.sequence} for the goal {snapshot.title!r}.",
            f"Due by {deadline:%Y-%m-%d %H:%M} ({zone_name}).",
        ]
        if rule:
            lines.append(f"Schedule: {rule}.")
        if instance.state in ("completed", "missed"):
            lines.append("Done." if instance.state == "completed" else "Missed.")
        if instance.snoozed:
            lines.append("Snoozed.")
        if instance.note:
            lines.append(instance.note)
        event.add("description", "\n".join(lines))
        event.add("x-followthrough-state", instance.state)
        for reminder in instance.reminders:
            nominal = instance.due_at - timedelta(minutes=reminder.lead)
            trigger: timedelta | datetime = (
                -timedelta(minutes=reminder.lead)
                if reminder.at == nominal
                else reminder.at.astimezone(UTC)
            )
            event.add_component(_alarm(f"Check-in due: {snapshot.title}", trigger))
        calendar.add_component(event)


def add_sessions(
    calendar: Calendar,
    goal: GoalContext,
    sessions: Iterable[CoachingSessionRow],
    *,
    email: str | None,
) -> None:
    """The goal's coaching sessions (only those ``email`` takes part in, when given)."""
    for row in list(sessions)[:MAX_SESSIONS]:
        if email is not None and not any(
            str(p.get("email", "")).lower() == email for p in row.participants
        ):
            continue
        event = session_event(
            session=session_model(row).model_dump(mode="json"),
            goal_title=goal.snapshot.title,
            zone=goal.snapshot.timezone,
            stamp=row.updated_at,
        )
        if row.status == "scheduled":
            for lead in row.reminder_lead_minutes:
                event.add_component(
                    _alarm(f"Coaching session: {goal.snapshot.title}", -timedelta(minutes=lead))
                )
        calendar.add_component(event)


def _alarm(description: str, trigger: timedelta | datetime) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", description)
    alarm.add("trigger", trigger)
    return alarm
