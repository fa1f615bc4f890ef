"""Domain events as the goals and sessions services publish them, built with build_event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.events.catalog.common import Participant
from shared.events.catalog.goals import (
    GoalCompleted,
    GoalEventData,
    GoalSnapshot,
    MilestoneCompleted,
    MilestoneEventData,
    MilestoneSnapshot,
)
from shared.events.catalog.policy import CheckinPolicy, DailyCadence, QuietHours
from shared.events.catalog.sessions import (
    CheckinCompleted,
    CheckinCompletedData,
    CheckinDueSoon,
    CheckinDueSoonData,
    CheckinMissed,
    CheckinMissedData,
    CheckinRecord,
    GoalRef,
    Occurrence,
    Reasoning,
    Risk,
    StreakUpdated,
    StreakUpdatedData,
)
from shared.events.envelope import CloudEvent

__all__ = ["UTC", "Participant", "ZoneInfo", "datetime", "timedelta"]
from shared.events.registry import build_event

MENTEE = Participant(role="mentee", name="Ada", email="ada@example.com", timezone="Europe/Berlin")
MENTOR = Participant(role="mentor", name="Grace", email="grace@example.com", timezone="UTC")
SPONSOR = Participant(role="sponsor", name="Sam", email="sam@example.com")


def goal_ref(
    goal_id: str | None = None,
    *,
    title: str = "Run a half marathon",
    category: str | None = "health",
    participants: list[Participant] | None = None,
) -> GoalRef:
    return GoalRef(
        goal_id=goal_id or str(uuid.uuid4()),
        title=title,
        category=category,
        timezone="Europe/Berlin",
        participants=participants or [MENTEE, MENTOR, SPONSOR],
    )


def occurrence(due: datetime | None = None) -> Occurrence:
    due = due or datetime.now(UTC)
    return Occurrence(
        occurrence_id=str(uuid.uuid4()),
        sequence=3,
        due_at=due,
        local_due=due.replace(tzinfo=None).isoformat(timespec="minutes"),
        timezone="Europe/Berlin",
        deadline_at=due + timedelta(hours=2),
    )


def reasoning(now: datetime) -> Reasoning:
    return Reasoning(
        rule="daily at 09:00",
        local_due="2026-11-25T09:00",
        timezone="Europe/Berlin",
        grace_minutes=120,
        occurrence_number=3,
        scheduled_for=now,
        fired_at=now,
    )


def risk(score: int = 40) -> Risk:
    if score >= 70:
        return Risk(score=score, level="high")
    return Risk(score=score, level="medium" if score >= 40 else "low")


def _event(cls: type[CloudEvent], data: Any, goal: GoalRef | GoalSnapshot, **kw: Any) -> CloudEvent:
    return build_event(
        cls,
        data,
        tenant_id=kw.pop("tenant_id", "acme"),
        partition_key=goal.goal_id,
        source="/followthrough/sessions",
        subject=goal.goal_id,
        **kw,
    )


def checkin_missed(goal: GoalRef | None = None, *, score: int = 60, **kw: Any) -> CloudEvent:
    goal = goal or goal_ref()
    now = datetime.now(UTC)
    data = CheckinMissedData(
        goal=goal,
        occurrence=occurrence(now - timedelta(hours=3)),
        consecutive_misses=1,
        reasoning=reasoning(now),
        risk=risk(score),
    )
    return _event(CheckinMissed, data, goal, **kw)


def checkin_due_soon(goal: GoalRef | None = None, **kw: Any) -> CloudEvent:
    goal = goal or goal_ref()
    now = datetime.now(UTC)
    data = CheckinDueSoonData(
        goal=goal,
        occurrence=occurrence(now + timedelta(hours=1)),
        lead_minutes=60,
        reasoning=reasoning(now),
        risk=risk(20),
    )
    return _event(CheckinDueSoon, data, goal, **kw)


def checkin_completed(goal: GoalRef | None = None, *, score: int = 30, **kw: Any) -> CloudEvent:
    goal = goal or goal_ref()
    now = datetime.now(UTC)
    data = CheckinCompletedData(
        goal=goal,
        checkin=CheckinRecord(checkin_id=str(uuid.uuid4()), occurred_at=now),
        risk=risk(score),
    )
    return _event(CheckinCompleted, data, goal, **kw)


def streak_updated(goal: GoalRef | None = None, *, current: int = 3, **kw: Any) -> CloudEvent:
    goal = goal or goal_ref()
    return _event(
        StreakUpdated, StreakUpdatedData(goal=goal, current=current, longest=current), goal, **kw
    )


def goal_snapshot(
    goal_id: str | None = None,
    *,
    category: str | None = "health",
    quiet: tuple[str, str] | None = None,
    version: int = 1,
    status: str = "active",
) -> GoalSnapshot:
    now = datetime.now(UTC)
    policy = CheckinPolicy(
        cadence=DailyCadence(),
        timezone="Europe/Berlin",
        quiet_hours=QuietHours.model_validate({"start": quiet[0], "end": quiet[1]})
        if quiet
        else None,
    )
    return GoalSnapshot.model_validate(
        {
            "goal_id": goal_id or str(uuid.uuid4()),
            "title": "Run a half marathon",
            "category": category,
            "status": status,
            "version": version,
            "participants": [MENTEE.model_dump(), MENTOR.model_dump(), SPONSOR.model_dump()],
            "policy": policy.model_dump(),
            "milestones": [],
            "created_at": now,
            "updated_at": now,
        }
    )


def milestone_completed(goal: GoalSnapshot | None = None, **kw: Any) -> CloudEvent:
    goal = goal or goal_snapshot()
    milestone = MilestoneSnapshot(
        milestone_id=str(uuid.uuid4()),
        title="Run 10 km",
        status="completed",
        completed_at=datetime.now(UTC),
    )
    return build_event(
        MilestoneCompleted,
        MilestoneEventData(goal=goal, milestone=milestone),
        tenant_id=kw.pop("tenant_id", "acme"),
        partition_key=goal.goal_id,
        source="/followthrough/goals",
        **kw,
    )


def goal_completed(goal: GoalSnapshot | None = None, **kw: Any) -> CloudEvent:
    goal = goal or goal_snapshot(status="completed")
    return build_event(
        GoalCompleted,
        GoalEventData(goal=goal, previous_status="active"),
        tenant_id=kw.pop("tenant_id", "acme"),
        partition_key=goal.goal_id,
        source="/followthrough/goals",
        **kw,
    )
