"""Per-goal views that send nothing: the tenant's goals ranked by risk, and one goal's forecast."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.sessions.api.deps import Forecasts, GoalId, Ranking, Reader
from services.sessions.schemas import Forecast, GoalRiskPage, Instant
from shared.events.catalog.goals import GoalStatus
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1")


@router.get(
    "/goals",
    response_model=GoalRiskPage,
    tags=["check-ins"],
    summary="The tenant's goals ranked by at-risk score, highest first",
    description=(
        "The score is computed at the time of asking (as in `/goals/{id}/checkins`); "
        "`status` keeps one goal status (e.g. `active`). Ties are ordered by goal id."
    ),
)
async def rank_goals(
    principal: Reader,
    ranking: Ranking,
    order: Annotated[Literal["risk"], Query(description="Only `risk` for now.")] = "risk",
    status_filter: Annotated[GoalStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=600, pattern=r"^[A-Za-z0-9_-]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> GoalRiskPage:
    return await ranking.page(principal.tenant_id, status=status_filter, cursor=cursor, limit=limit)


@router.get(
    "/goals/{goal_id}/schedule",
    response_model=Forecast,
    tags=["schedule"],
    summary="Forecast: due times, reminders and escalations up to `until`, sending nothing",
    responses=problem_responses(404),
)
async def forecast(
    goal_id: GoalId,
    principal: Reader,
    service: Forecasts,
    until: Annotated[
        Instant | None, Query(description="End of the forecast; 30 days ahead by default.")
    ] = None,
) -> Forecast:
    return await service.forecast(principal.tenant_id, goal_id, until)
