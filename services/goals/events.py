"""Turning goals state into the events of the catalog."""

from __future__ import annotations

from collections.abc import Sequence

from services.goals.models import Goal, Milestone
from shared.events.catalog.common import Participant
from shared.events.catalog.goals import (
    GoalEventData,
    GoalSnapshot,
    GoalStatus,
    MilestoneEventData,
    MilestoneSnapshot,
)
from shared.events.catalog.policy import CheckinPolicy
from shared.events.envelope import CloudEvent
from shared.events.registry import build_event

SOURCE = "/followthrough/goals"


def milestone_snapshot(milestone: Milestone) -> MilestoneSnapshot:
    return MilestoneSnapshot(
        milestone_id=milestone.id,
        title=milestone.title,
        due_date=milestone.due_date,
        status=milestone.status,  # type: ignore[arg-type]
        completed_at=milestone.completed_at,
        evidence_note=milestone.evidence_note,
    )


def goal_snapshot(goal: Goal, milestones: Sequence[Milestone]) -> GoalSnapshot:
    return GoalSnapshot(
        goal_id=goal.id,
        external_ref=goal.external_ref,
        title=goal.title,
        description=goal.description,
        category=goal.category,
        target_date=goal.target_date,
        status=goal.status,  # type: ignore[arg-type]
        version=goal.version,
        participants=[Participant.model_validate(p) for p in goal.participants],
        policy=CheckinPolicy.model_validate(goal.policy) if goal.policy else None,
        milestones=[milestone_snapshot(m) for m in milestones],
        created_at=goal.created_at,
        updated_at=goal.updated_at,
    )


def goal_event(
    cls: type[CloudEvent],
    snapshot: GoalSnapshot,
    *,
    tenant_id: str,
    previous_status: GoalStatus | None = None,
) -> CloudEvent:
    return build_event(
        cls,
        GoalEventData(goal=snapshot, previous_status=previous_status),
        tenant_id=tenant_id,
        partition_key=snapshot.goal_id,
        source=SOURCE,
        subject=f"goals/{snapshot.goal_id}",
    )


def milestone_event(
    cls: type[CloudEvent], snapshot: GoalSnapshot, milestone: Milestone, *, tenant_id: str
) -> CloudEvent:
    return build_event(
        cls,
        MilestoneEventData(goal=snapshot, milestone=milestone_snapshot(milestone)),
        tenant_id=tenant_id,
        partition_key=snapshot.goal_id,
        source=SOURCE,
        subject=f"goals/{snapshot.goal_id}/milestones/{milestone.id}",
    )
