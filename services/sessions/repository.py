"""Every query of the sessions database."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.models import GoalProjection


class ProjectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, goal_id: str) -> GoalProjection | None:
        result: GoalProjection | None = (
            await self._session.execute(
                select(GoalProjection).where(GoalProjection.goal_id == goal_id).with_for_update()
            )
        ).scalar_one_or_none()
        return result

    def add(self, projection: GoalProjection) -> None:
        self._session.add(projection)
