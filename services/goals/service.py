"""Goals domain rules: what may change, and which event each change emits.

Every change happens in one transaction together with its events in the
outbox; the goal row is locked first, so two changes to one goal are
serialised and their events leave in the order they happened.
"""

from __future__ import annotations

import uuid

from services.goals.events import goal_event, goal_snapshot, milestone_event
from services.goals.models import Goal, Milestone
from services.goals.repository import GoalRepository
from services.goals.schemas import GoalCreate, MilestoneComplete, MilestoneCreate
from shared.events.catalog.goals import (
    GoalCreated,
    GoalSnapshot,
    MilestoneCompleted,
    MilestoneCreated,
)
from shared.events.envelope import utc_now
from shared.http.problems import ProblemError
from shared.runtime import ServiceRuntime


def _not_found(goal_id: str) -> ProblemError:
    return ProblemError(404, f"goal {goal_id} not found", slug="not-found")


class GoalsService:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self._db = runtime.database
        self._outbox = runtime.outbox

    async def create_goal(self, tenant_id: str, payload: GoalCreate) -> GoalSnapshot:
        now = utc_now()
        goal = Goal(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            external_ref=payload.external_ref,
            title=payload.title,
            description=payload.description,
            category=payload.category,
            target_date=payload.target_date,
            status=payload.status,
            version=1,
            participants=[p.model_dump(mode="json") for p in payload.participants],
            policy=payload.policy.model_dump(mode="json") if payload.policy else None,
            created_at=now,
            updated_at=now,
        )
        milestones = [
            Milestone(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                goal_id=goal.id,
                position=index,
                title=item.title,
                due_date=item.due_date,
                status="pending",
                created_at=now,
                updated_at=now,
            )
            for index, item in enumerate(payload.milestones, start=1)
        ]
        async with self._db.transaction() as session:
            repository = GoalRepository(session)
            repository.add(goal)
            await repository.flush()
            for milestone in milestones:
                repository.add_milestone(milestone)
            snapshot = goal_snapshot(goal, milestones)
            await self._outbox.add(
                session, [goal_event(GoalCreated, snapshot, tenant_id=tenant_id)]
            )
        return snapshot

    async def get_goal(self, tenant_id: str, goal_id: str) -> GoalSnapshot:
        async with self._db.reader() as session:
            repository = GoalRepository(session)
            goal = await repository.get(tenant_id, goal_id)
            if goal is None:
                raise _not_found(goal_id)
            return goal_snapshot(goal, await repository.milestones(goal_id))

    async def add_milestone(
        self, tenant_id: str, goal_id: str, payload: MilestoneCreate
    ) -> GoalSnapshot:
        async with self._db.transaction() as session:
            repository = GoalRepository(session)
            goal = await repository.get(tenant_id, goal_id, for_update=True)
            if goal is None:
                raise _not_found(goal_id)
            now = utc_now()
            milestone = Milestone(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                goal_id=goal_id,
                position=await repository.next_milestone_position(goal_id),
                title=payload.title,
                due_date=payload.due_date,
                status="pending",
                created_at=now,
                updated_at=now,
            )
            repository.add_milestone(milestone)
            goal.version += 1
            goal.updated_at = now
            await repository.flush()
            snapshot = goal_snapshot(goal, await repository.milestones(goal_id))
            await self._outbox.add(
                session,
                [milestone_event(MilestoneCreated, snapshot, milestone, tenant_id=tenant_id)],
            )
        return snapshot

    async def complete_milestone(
        self, tenant_id: str, goal_id: str, milestone_id: str, payload: MilestoneComplete
    ) -> GoalSnapshot:
        async with self._db.transaction() as session:
            repository = GoalRepository(session)
            goal = await repository.get(tenant_id, goal_id, for_update=True)
            if goal is None:
                raise _not_found(goal_id)
            milestones = list(await repository.milestones(goal_id))
            milestone = next((m for m in milestones if m.id == milestone_id), None)
            if milestone is None:
                raise ProblemError(404, f"milestone {milestone_id} not found", slug="not-found")
            if milestone.status != "pending":
                raise ProblemError(
                    409,
                    f"milestone is {milestone.status}; only a pending milestone can be completed",
                    slug="illegal-transition",
                    current_status=milestone.status,
                )
            now = utc_now()
            milestone.status = "completed"
            milestone.completed_at = now
            milestone.evidence_note = payload.evidence_note
            milestone.updated_at = now
            goal.version += 1
            goal.updated_at = now
            await repository.flush()
            snapshot = goal_snapshot(goal, milestones)
            await self._outbox.add(
                session,
                [milestone_event(MilestoneCompleted, snapshot, milestone, tenant_id=tenant_id)],
            )
        return snapshot
