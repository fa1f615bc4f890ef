"""HTTP routes of the goals service: thin, they validate, authorise and call the service layer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from services.goals.schemas import (
    GoalCreate,
    GoalOut,
    MilestoneComplete,
    MilestoneCreate,
    MilestoneOut,
)
from services.goals.service import GoalsService
from shared.auth.tokens import Principal
from shared.events.catalog.goals import GoalSnapshot
from shared.http.problems import problem_responses
from shared.http.security import require

router = APIRouter(prefix="/v1", tags=["goals"])

Reader = Annotated[Principal, Depends(require("goals:read"))]
Writer = Annotated[Principal, Depends(require("goals:write"))]


def get_service(request: Request) -> GoalsService:
    service: GoalsService = request.app.state.goals
    return service


Service = Annotated[GoalsService, Depends(get_service)]


def to_out(snapshot: GoalSnapshot) -> GoalOut:
    return GoalOut(
        id=snapshot.goal_id,
        external_ref=snapshot.external_ref,
        title=snapshot.title,
        description=snapshot.description,
        category=snapshot.category,
        target_date=snapshot.target_date,
        status=snapshot.status,
        version=snapshot.version,
        participants=snapshot.participants,
        policy=snapshot.policy,
        milestones=[
            MilestoneOut(
                id=m.milestone_id,
                title=m.title,
                due_date=m.due_date,
                status=m.status,
                completed_at=m.completed_at,
                evidence_note=m.evidence_note,
            )
            for m in snapshot.milestones
        ],
        created_at=snapshot.created_at,
        updated_at=snapshot.updated_at,
    )


@router.post(
    "/goals",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalOut,
    summary="Create a goal",
    responses=problem_responses(409),
)
async def create_goal(
    payload: GoalCreate, principal: Writer, service: Service, response: Response
) -> GoalOut:
    snapshot = await service.create_goal(principal.tenant_id, payload)
    response.headers["Location"] = f"/v1/goals/{snapshot.goal_id}"
    return to_out(snapshot)


@router.get(
    "/goals/{goal_id}",
    response_model=GoalOut,
    summary="Read a goal",
    responses=problem_responses(404),
)
async def get_goal(goal_id: str, principal: Reader, service: Service) -> GoalOut:
    return to_out(await service.get_goal(principal.tenant_id, goal_id))


@router.post(
    "/goals/{goal_id}/milestones",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalOut,
    summary="Add a milestone",
    responses=problem_responses(404),
)
async def add_milestone(
    goal_id: str, payload: MilestoneCreate, principal: Writer, service: Service
) -> GoalOut:
    return to_out(await service.add_milestone(principal.tenant_id, goal_id, payload))


@router.post(
    "/goals/{goal_id}/milestones/{milestone_id}/complete",
    response_model=GoalOut,
    summary="Complete a milestone",
    responses=problem_responses(404, 409),
)
async def complete_milestone(
    goal_id: str,
    milestone_id: str,
    principal: Writer,
    service: Service,
    payload: MilestoneComplete | None = None,
) -> GoalOut:
    snapshot = await service.complete_milestone(
        principal.tenant_id, goal_id, milestone_id, payload or MilestoneComplete()
    )
    return to_out(snapshot)
