"""Every query of the goals database; the service layer never builds SQL itself."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.goals.models import Goal, Milestone


class GoalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, tenant_id: str, goal_id: str, *, for_update: bool = False) -> Goal | None:
        query = select(Goal).where(Goal.tenant_id == tenant_id, Goal.id == goal_id)
        if for_update:
            query = query.with_for_update()
        result: Goal | None = (await self._session.execute(query)).scalar_one_or_none()
        return result

    def add(self, goal: Goal) -> None:
        self._session.add(goal)

    async def milestones(self, goal_id: str) -> Sequence[Milestone]:
        result = await self._session.execute(
            select(Milestone).where(Milestone.goal_id == goal_id).order_by(Milestone.position)
        )
        return result.scalars().all()

    async def next_milestone_position(self, goal_id: str) -> int:
        highest = await self._session.scalar(
            select(func.max(Milestone.position)).where(Milestone.goal_id == goal_id)
        )
        return int(highest or 0) + 1

    def add_milestone(self, milestone: Milestone) -> None:
        self._session.add(milestone)

    async def flush(self) -> None:
        await self._session.flush()
