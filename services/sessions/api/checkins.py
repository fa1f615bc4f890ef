"""Check-in routes: record one, list a goal's, acknowledge a miss, snooze the open one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from services.sessions.api.deps import Checkins, GoalId, Ingesting, Reader, Writer
from services.sessions.schemas import (
    AcknowledgeOut,
    AcknowledgeRequest,
    CheckinCreate,
    CheckinList,
    CheckinOut,
    Instant,
    SnoozeOut,
    SnoozeRequest,
)
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1")


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
