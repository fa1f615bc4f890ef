"""What the sessions service consumes: goal and milestone events, into its goal projection."""

from __future__ import annotations

from collections.abc import Sequence

from services.sessions.models import GoalProjection
from services.sessions.repository import ProjectionRepository
from shared.db.database import Database
from shared.events.catalog.goals import GoalEventData, MilestoneEventData, ProgressReportedData
from shared.events.envelope import utc_now
from shared.kafka.consumer import ConsumedEvent, event_scope
from shared.kafka.dedupe import first_delivery
from shared.logs import get_logger

log = get_logger(__name__)
CONSUMER = "sessions.goal-events"
_GOAL_DATA = (GoalEventData, MilestoneEventData, ProgressReportedData)


class GoalEventHandler:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def __call__(self, batch: Sequence[ConsumedEvent]) -> None:
        async with self._db.transaction() as session:
            repository = ProjectionRepository(session)
            for item in batch:
                event = item.event
                with event_scope(event):
                    if not await first_delivery(session, CONSUMER, event.id):
                        log.info("sessions.event.duplicate", event_type=event.type)
                        continue
                    data = event.data
                    if not isinstance(
                        data, GoalEventData | MilestoneEventData | ProgressReportedData
                    ):
                        continue
                    goal = data.goal
                    projection = await repository.get(goal.goal_id)
                    if projection is None:
                        repository.add(
                            GoalProjection(
                                goal_id=goal.goal_id,
                                tenant_id=event.tenantid,
                                version=goal.version,
                                status=goal.status,
                                snapshot=goal.model_dump(mode="json"),
                                updated_at=utc_now(),
                            )
                        )
                    elif goal.version > projection.version:
                        projection.version = goal.version
                        projection.status = goal.status
                        projection.snapshot = goal.model_dump(mode="json")
                        projection.updated_at = utc_now()
                    log.info(
                        "sessions.goal_event.received",
                        event_type=event.type,
                        goal_id=goal.goal_id,
                        goal_version=goal.version,
                    )
