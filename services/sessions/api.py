"""HTTP routes of the sessions service: thin, they validate, authorise and call the services."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from services.sessions.coaching import CoachingService
from services.sessions.forecast import ForecastService
from services.sessions.ranking import RiskRanking
from services.sessions.schemas import (
    AcknowledgeOut,
    AcknowledgeRequest,
    CheckinCreate,
    CheckinList,
    CheckinOut,
    Forecast,
    GoalRiskPage,
    Instant,
    SessionCreate,
    SessionOut,
    SnoozeOut,
    SnoozeRequest,
)
from services.sessions.service import CheckinService
from shared.auth.tokens import Principal
from shared.events.catalog.goals import GoalStatus
from shared.http.problems import problem_responses
from shared.http.ratelimit import rate_limited
from shared.http.security import require

router = APIRouter(prefix="/v1")

Reader = Annotated[Principal, Depends(require("sessions:read"))]
Writer = Annotated[Principal, Depends(require("sessions:write"))]
Ingesting = Annotated[Principal, Depends(rate_limited("sessions:write"))]
GoalId = Annotated[str, Path(min_length=1, max_length=128, description="The goal's id.")]
SessionId = Annotated[str, Path(min_length=1, max_length=128, description="The session's id.")]


async def _checkins(request: Request) -> CheckinService:
    service: CheckinService = request.app.state.checkins
    return service


async def _coaching(request: Request) -> CoachingService:
    service: CoachingService = request.app.state.coaching
    return service


async def _forecasts(request: Request) -> ForecastService:
    service: ForecastService = request.app.state.forecasts
    return service


async def _ranking(request: Request) -> RiskRanking:
    service: RiskRanking = request.app.state.ranking
    return service


Checkins = Annotated[CheckinService, Depends(_checkins)]
Coaching = Annotated[CoachingService, Depends(_coaching)]
Forecasts = Annotated[ForecastService, Depends(_forecasts)]
Ranking = Annotated[RiskRanking, Depends(_ranking)]


@router.post(
    "/checkins",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckinOut,
    tags=["check-ins"],
    summary="Record a check-in",
    description=(
        "Attaches to the open occurrence whose window contains `occurred_at` (on time), "
        "else to the latest missed occurrence (late), else it is recorded as unscheduled. "
        "Honours `Idempotency-Key`."
    ),
    responses=problem_responses(404, 409, 429),
)
async def record_checkin(
    payload: CheckinCreate, principal: Ingesting, service: Checkins, response: Response
) -> CheckinOut:
    checkin = await service.record(principal.tenant_id, payload)
    response.headers["Location"] = f"/v1/goals/{checkin.goal_id}/checkins"
    return checkin


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
    "/goals/{goal_id}/checkins",
    response_model=CheckinList,
    tags=["check-ins"],
    summary="A goal's check-ins, newest first, with adherence and risk",
    responses=problem_responses(404),
)
async def list_checkins(
    goal_id: GoalId,
    principal: Reader,
    service: Checkins,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[Instant | None, Query(description="Only check-ins before this.")] = None,
) -> CheckinList:
    return await service.history(principal.tenant_id, goal_id, limit=limit, before=before)


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


@router.post(
    "/goals/{goal_id}/acknowledge",
    response_model=AcknowledgeOut,
    tags=["schedule"],
    summary="Acknowledge a missed check-in; cancels its pending escalations",
    responses=problem_responses(404, 409),
)
async def acknowledge(
    goal_id: GoalId,
    principal: Writer,
    service: Checkins,
    payload: AcknowledgeRequest | None = None,
) -> AcknowledgeOut:
    body = payload or AcknowledgeRequest()
    return await service.acknowledge(
        principal.tenant_id, goal_id, role=body.role, occurrence_id=body.occurrence_id
    )


@router.post(
    "/goals/{goal_id}/snooze",
    response_model=SnoozeOut,
    tags=["schedule"],
    summary="Push the open check-in's deadline by a bounded amount, once",
    responses=problem_responses(404, 409),
)
async def snooze(
    goal_id: GoalId, payload: SnoozeRequest, principal: Writer, service: Checkins
) -> SnoozeOut:
    return await service.snooze(
        principal.tenant_id, goal_id, minutes=payload.minutes, occurrence_id=payload.occurrence_id
    )


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Schedule a coaching session (reminders at its lead times)",
    responses=problem_responses(404, 409),
)
async def schedule_session(
    payload: SessionCreate, principal: Writer, service: Coaching, response: Response
) -> SessionOut:
    session = await service.schedule(principal.tenant_id, payload)
    response.headers["Location"] = f"/v1/sessions/{session.id}"
    return session


@router.get(
    "/sessions/{session_id}",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Read a coaching session",
    responses=problem_responses(404),
)
async def get_session(session_id: SessionId, principal: Reader, service: Coaching) -> SessionOut:
    return await service.get(principal.tenant_id, session_id)


@router.post(
    "/sessions/{session_id}/held",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Mark a session held",
    responses=problem_responses(404, 409),
)
async def session_held(session_id: SessionId, principal: Writer, service: Coaching) -> SessionOut:
    return await service.conclude(principal.tenant_id, session_id, "held")


@router.post(
    "/sessions/{session_id}/no-show",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Mark a session a no-show",
    responses=problem_responses(404, 409),
)
async def session_no_show(
    session_id: SessionId, principal: Writer, service: Coaching
) -> SessionOut:
    return await service.conclude(principal.tenant_id, session_id, "no_show")


@router.post(
    "/sessions/{session_id}/cancel",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Cancel a scheduled session",
    responses=problem_responses(404, 409),
)
async def session_cancel(session_id: SessionId, principal: Writer, service: Coaching) -> SessionOut:
    return await service.conclude(principal.tenant_id, session_id, "cancelled")
