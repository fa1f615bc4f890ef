"""Sixty days of a weekly schedule in seconds: a manual clock, a given pattern of check-ins,
and the exact sequence of events the service published, read back from the real broker.

Policy: Mondays 09:00 Europe/Berlin, reminder 60 min before, 120 min grace, escalate to the
mentor at 2 misses in a row (after the 60-minute escalation delay). The run crosses the
spring DST change (29 March 2026), so due times move from 08:00 to 07:00 UTC while staying
09:00 local.

Pattern, week by week: on time (after due, before due, in grace), miss, miss (escalates),
on time, miss then a late check-in, miss then acknowledged (escalation cancelled), on time
before due.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.events import CloudEvent
from shared.events.catalog.sessions import (
    CheckinAcknowledged,
    CheckinCompleted,
    CheckinDueSoon,
    CheckinEscalated,
    CheckinMissed,
    StreakBroken,
    StreakUpdated,
)
from tests.services.sessions.support import (
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    wait_for,
    weekly,
)
from tests.support.kafka import read_events

START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # a Sunday
END = START + timedelta(days=60)
POLICY = weekly(
    ["MO"],
    reminder_lead_minutes=[60],
    grace_minutes=120,
    escalation=[{"after_misses": 2, "notify_roles": ["mentor"]}],
)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# (when, what): check-ins carry occurred_at = when; "ack" acknowledges the latest miss.
ACTIONS: list[tuple[datetime, str]] = [
    (utc(3, 2, 8, 30), "checkin"),  # W1 30 min after due
    (utc(3, 9, 7, 30), "checkin"),  # W2 before due, inside the 12 h window
    (utc(3, 16, 9, 45), "checkin"),  # W3 in grace
    # W4 (23 Mar) and W5 (30 Mar, first CEST Monday) missed
    (utc(4, 6, 7, 5), "checkin"),  # W6
    (utc(4, 13, 9, 30), "checkin"),  # W7: after its deadline (09:00Z): late
    (utc(4, 20, 9, 30), "ack"),  # W8 missed, acknowledged before the escalation
    (utc(4, 27, 6, 30), "checkin"),  # W9 before due
]

DUE = [
    utc(3, 2, 8),
    utc(3, 9, 8),
    utc(3, 16, 8),
    utc(3, 23, 8),
    utc(3, 30, 7),
    utc(4, 6, 7),
    utc(4, 13, 7),
    utc(4, 20, 7),
    utc(4, 27, 7),
]


def expected() -> list[tuple[Any, ...]]:
    """(type, occurrence sequence or None, detail) for every event, in order."""
    return [
        ("checkin.due_soon", 1, 60),
        ("checkin.completed", 1, "on_time"),
        ("streak.updated", None, (1, 1)),
        ("checkin.due_soon", 2, 60),
        ("checkin.completed", 2, "on_time"),
        ("streak.updated", None, (2, 2)),
        ("checkin.due_soon", 3, 60),
        ("checkin.completed", 3, "on_time"),
        ("streak.updated", None, (3, 3)),
        ("checkin.due_soon", 4, 60),
        ("checkin.missed", 4, 1),
        ("streak.broken", 4, (3, 3)),
        ("checkin.due_soon", 5, 60),
        ("checkin.missed", 5, 2),
        ("checkin.escalated", 5, (1, ["mentor"], 2)),
        ("checkin.due_soon", 6, 60),
        ("checkin.completed", 6, "on_time"),
        ("streak.updated", None, (1, 3)),
        ("checkin.due_soon", 7, 60),
        ("checkin.missed", 7, 1),
        ("streak.broken", 7, (1, 3)),
        ("checkin.completed", 7, "late"),
        ("checkin.due_soon", 8, 60),
        ("checkin.missed", 8, 2),
        ("checkin.acknowledged", 8, 1),
        ("checkin.due_soon", 9, 60),
        ("checkin.completed", 9, "on_time"),
        ("streak.updated", None, (1, 3)),
    ]


def summarise(event: CloudEvent) -> tuple[Any, ...]:
    data: Any = event.data
    if isinstance(event, CheckinDueSoon):
        return (event.type, data.occurrence.sequence, data.lead_minutes)
    if isinstance(event, CheckinCompleted):
        status = "late" if data.checkin.late else "on_time"
        return (event.type, data.occurrence.sequence if data.occurrence else None, status)
    if isinstance(event, StreakUpdated):
        return (event.type, None, (data.current, data.longest))
    if isinstance(event, CheckinMissed):
        return (event.type, data.occurrence.sequence, data.consecutive_misses)
    if isinstance(event, StreakBroken):
        return (event.type, data.occurrence.sequence, (data.previous, data.longest))
    if isinstance(event, CheckinEscalated):
        detail = (data.level, list(data.notify_roles), data.consecutive_misses)
        return (event.type, data.occurrence.sequence, detail)
    if isinstance(event, CheckinAcknowledged):
        return (event.type, data.occurrence.sequence, data.cancelled_escalations)
    return (event.type, None, None)


async def test_sixty_days_of_a_weekly_schedule_emit_exactly_the_expected_events(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    goal = snapshot(goal_id, policy=POLICY, at=START)
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers, f"{topic_prefix}goals", [goal_event(goal, at=START)]
        )
        await app.wait_projected(goal_id)
        await app.scheduler.wait_caught_up(START)
        pending = list(ACTIONS)
        while True:
            next_due = app.scheduler.next_due
            candidates = [moment for moment in (next_due, pending[0][0] if pending else None)]
            target = min([moment for moment in candidates if moment is not None] + [END])
            await app.step_to(target)
            while pending and pending[0][0] == target:
                _, action = pending.pop(0)
                if action == "checkin":
                    response = await app.http.post(
                        "/v1/checkins",
                        json={"goal_id": goal_id, "occurred_at": target.isoformat(), "rating": 4},
                        headers=app.headers,
                    )
                    assert response.status_code == 201, response.text
                else:
                    response = await app.http.post(
                        f"/v1/goals/{goal_id}/acknowledge",
                        json={"role": "mentee"},
                        headers=app.headers,
                    )
                    assert response.status_code == 200, response.text
                await app.scheduler.wait_caught_up(target)
            if target >= END:
                break
        emitted = await app.outbox_events()
        await wait_for(lambda: _nothing_unsent(app), what="outbox drained")
        published = await read_events(
            broker.bootstrap_servers,
            f"{topic_prefix}sessions",
            until=lambda events: len(events) >= len(emitted),
        )
        history = (await app.http.get(f"/v1/goals/{goal_id}/checkins", headers=app.headers)).json()

    assert [summarise(event) for event in published] == expected()
    assert [event.id for event in published] == [event.id for event in emitted]

    # Due times stay 09:00 local across the DST change; nothing fired late.
    due_soon = [event for event in published if isinstance(event, CheckinDueSoon)]
    assert [event.data.occurrence.due_at for event in due_soon] == DUE
    assert {event.data.occurrence.local_due[11:] for event in due_soon} == {"09:00:00"}
    assert all(
        event.time == event.data.occurrence.due_at - timedelta(hours=1) for event in due_soon
    )
    timed = [
        e for e in published if isinstance(e, CheckinDueSoon | CheckinMissed | CheckinEscalated)
    ]
    assert not any(event.data.reasoning.late for event in timed)
    missed = [event for event in published if isinstance(event, CheckinMissed)]
    assert [event.time for event in missed] == [
        due + timedelta(minutes=120) for due in (DUE[3], DUE[4], DUE[6], DUE[7])
    ]
    escalated = next(event for event in published if isinstance(event, CheckinEscalated))
    assert escalated.time == DUE[4] + timedelta(minutes=120 + 60)
    assert [person.role for person in escalated.data.recipients] == ["mentor"]
    reasoning = escalated.data.reasoning
    assert reasoning.rule == "weekly MO at 09:00"
    assert reasoning.local_due == "2026-03-30T09:00:00"
    assert reasoning.timezone == "Europe/Berlin"
    assert (reasoning.grace_minutes, reasoning.occurrence_number) == (120, 5)
    assert (reasoning.consecutive_misses, reasoning.ladder_level) == (2, 1)
    assert all(event.data.goal.participants for event in timed)
    assert all(event.partitionkey == goal_id for event in published)

    assert history["adherence"] == {
        "on_time_rate": round(5 / 9, 4),
        "completed_on_time": 5,
        "missed": 4,
        "late_checkins": 1,
        "current_streak": 1,
        "longest_streak": 3,
        "consecutive_misses": 0,
        "misses_last_30_days": 2,
    }
    assert [c["status"] for c in history["checkins"]] == [
        "on_time", "late", "on_time", "on_time", "on_time", "on_time"
    ]  # fmt: skip


async def _nothing_unsent(app: Any) -> bool:
    return bool(await app.unsent() == 0)
