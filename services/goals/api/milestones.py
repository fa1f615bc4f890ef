"""Milestone and progress routes; each answers with the whole goal and its new ETag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from services.goals.api.deps import (
    GoalId,
    IdempotencyKey,
    IfMatch,
    Ingesting,
    MilestoneId,
    Reader,
    Service,
    Writer,
    goal_response,
)
from services.goals.responses import GoalOut, MilestoneOut
from services.goals.schemas import (
    MilestoneComplete,
    MilestoneCreate,
    MilestonePatch,
    MilestoneSkip,
    ProgressCreate,
)
from shared.http.problems import ProblemError, problem_responses

router = APIRouter(prefix="/v1/goals/{goal_id}", tags=["milestones and progress"])


@router.post(
    "/milestones",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalOut,
    summary="Add a milestone",
    description="Emits milestone.created. Location names the new milestone.",
    responses=problem_responses(404, 409, 412),
)
async def add_milestone(
    goal_id: GoalId,
    payload: MilestoneCreate,
    principal: Writer,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> GoalOut:
    snapshot, milestone_id = await service.add_milestone(
        principal.tenant_id, goal_id, payload, if_match=if_match
    )
    response.headers["Location"] = f"/v1/goals/{goal_id}/milestones/{milestone_id}"
    return goal_response(snapshot, response)


@router.get(
    "/milestones/{milestone_id}",
    response_model=MilestoneOut,
    summary="Read a milestone",
    responses=problem_responses(404),
)
async def get_milestone(
    goal_id: GoalId, milestone_id: MilestoneId, principal: Reader, service: Service
) -> MilestoneOut:
    snapshot = await service.get_goal(principal.tenant_id, goal_id)
    for milestone in GoalOut.of(snapshot).milestones:
        if milestone.id == milestone_id:
            return milestone
    raise ProblemError(404, f"milestone {milestone_id} not found", slug="not-found")


@router.patch(
    "/milestones/{milestone_id}",
    response_model=GoalOut,
    summary="Change a milestone",
    description="Merge patch of title, due date and external_ref; emits milestone.updated. "
    "A new due date re-arms the overdue timer.",
    responses=problem_responses(404, 409, 412),
)
async def patch_milestone(
    goal_id: GoalId,
    milestone_id: MilestoneId,
    payload: MilestonePatch,
    principal: Writer,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> GoalOut:
    snapshot = await service.patch_milestone(
        principal.tenant_id, goal_id, milestone_id, payload, if_match=if_match
    )
    return goal_response(snapshot, response)


@router.post(
    "/milestones/{milestone_id}/complete",
    response_model=GoalOut,
    summary="Complete a milestone",
    description="pending -> completed; emits milestone.completed. Otherwise 409.",
    responses=problem_responses(404, 409, 412),
)
async def complete_milestone(
    goal_id: GoalId,
    milestone_id: MilestoneId,
    principal: Writer,
    service: Service,
    response: Response,
    payload: Annotated[MilestoneComplete | None, Body()] = None,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> GoalOut:
    snapshot = await service.finish_milestone(
        principal.tenant_id,
        goal_id,
        milestone_id,
        "completed",
        note=payload.evidence_note if payload else None,
        if_match=if_match,
    )
    return goal_response(snapshot, response)


@router.post(
    "/milestones/{milestone_id}/skip",
    response_model=GoalOut,
    summary="Skip a milestone",
    description="pending -> skipped; emits milestone.skipped. Otherwise 409.",
    responses=problem_responses(404, 409, 412),
)
async def skip_milestone(
    goal_id: GoalId,
    milestone_id: MilestoneId,
    principal: Writer,
    service: Service,
    response: Response,
    payload: Annotated[MilestoneSkip | None, Body()] = None,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> GoalOut:
    snapshot = await service.finish_milestone(
        principal.tenant_id,
        goal_id,
        milestone_id,
        "skipped",
        note=payload.note if payload else None,
        if_match=if_match,
    )
    return goal_response(snapshot, response)


@router.post(
    "/progress",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalOut,
    summary="Report progress",
    description="Records a progress report (0-100 %) and emits progress.reported.",
    responses=problem_responses(404, 409, 412, 429),
)
async def report_progress(
    goal_id: GoalId,
    payload: ProgressCreate,
    principal: Ingesting,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> GoalOut:
    snapshot = await service.report_progress(
        principal.tenant_id, goal_id, payload.percent, note=payload.note, if_match=if_match
    )
    return goal_response(snapshot, response)
