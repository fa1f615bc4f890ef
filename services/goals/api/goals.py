"""Goal routes: create, read, list, patch, upsert by ref, lifecycle actions, event history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Query, Response, status
from pydantic import AwareDatetime, EmailStr

from services.goals.api.deps import (
    ExternalRefPath,
    GoalId,
    IdempotencyKey,
    IfMatch,
    Ingesting,
    Reader,
    Service,
    Writer,
    goal_response,
)
from services.goals.domain import TRANSITIONS
from services.goals.responses import GoalEventPage, GoalFilters, GoalOut, GoalPage
from services.goals.schemas import GoalCreate, GoalPatch, GoalUpsert, LifecycleAction
from shared.events.catalog.goals import GoalStatus
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["goals"])


@router.post(
    "/goals",
    status_code=status.HTTP_201_CREATED,
    response_model=GoalOut,
    summary="Create a goal",
    description="Emits goal.created (the snapshot includes the milestones given here).",
    responses=problem_responses(409, 429),
)
async def create_goal(
    payload: GoalCreate,
    principal: Ingesting,
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> GoalOut:
    snapshot = await service.create_goal(principal.tenant_id, payload)
    response.headers["Location"] = f"/v1/goals/{snapshot.goal_id}"
    return goal_response(snapshot, response)


@router.get(
    "/goals",
    response_model=GoalPage,
    summary="List goals",
    description="Ordered by last change (oldest first), so `updated_since` plus the cursor "
    "pages through everything that changed; a goal changed while paging shows up again later.",
)
async def list_goals(
    principal: Reader,
    service: Service,
    status_filter: Annotated[GoalStatus | None, Query(alias="status")] = None,
    mentee_email: Annotated[EmailStr | None, Query(max_length=320)] = None,
    participant_email: Annotated[EmailStr | None, Query(max_length=320)] = None,
    updated_since: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> GoalPage:
    filters = GoalFilters(
        status=status_filter,
        mentee_email=mentee_email,
        participant_email=participant_email,
        updated_since=updated_since,
    )
    snapshots, next_cursor = await service.list_goals(
        principal.tenant_id, filters, cursor=cursor, limit=limit
    )
    return GoalPage(items=[GoalOut.of(s) for s in snapshots], next_cursor=next_cursor)


@router.get(
    "/goals/by-ref/{external_ref}",
    response_model=GoalOut,
    summary="Read a goal by the integrator's id",
    responses=problem_responses(404),
)
async def get_goal_by_ref(
    external_ref: ExternalRefPath, principal: Reader, service: Service, response: Response
) -> GoalOut:
    snapshot = await service.get_goal_by_ref(principal.tenant_id, external_ref)
    return goal_response(snapshot, response)


@router.put(
    "/goals/by-ref/{external_ref}",
    response_model=GoalOut,
    summary="Create or replace a goal by the integrator's id",
    description="201 when created, 200 when it existed. Emits goal.created, or goal.updated "
    "and milestone.created/updated for what changed (nothing when nothing changed).",
    responses={
        201: {"model": GoalOut, "description": "Created"},
        **problem_responses(409, 412, 429),
    },
)
async def upsert_goal(
    external_ref: ExternalRefPath,
    payload: GoalUpsert,
    principal: Ingesting,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> GoalOut:
    snapshot, created = await service.upsert_by_ref(
        principal.tenant_id, external_ref, payload, if_match=if_match
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/v1/goals/{snapshot.goal_id}"
    return goal_response(snapshot, response)


@router.get(
    "/goals/{goal_id}",
    response_model=GoalOut,
    summary="Read a goal",
    responses=problem_responses(404),
)
async def get_goal(
    goal_id: GoalId, principal: Reader, service: Service, response: Response
) -> GoalOut:
    return goal_response(await service.get_goal(principal.tenant_id, goal_id), response)


@router.patch(
    "/goals/{goal_id}",
    response_model=GoalOut,
    summary="Change a goal's fields",
    description="JSON merge patch of the goal's own fields (status changes through the "
    "actions). Emits goal.updated when something changed.",
    responses=problem_responses(404, 409, 412),
)
async def patch_goal(
    goal_id: GoalId,
    payload: GoalPatch,
    principal: Writer,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> GoalOut:
    snapshot = await service.patch_goal(principal.tenant_id, goal_id, payload, if_match=if_match)
    return goal_response(snapshot, response)


def _lifecycle_route(action: str) -> Callable[..., Awaitable[GoalOut]]:
    async def act(
        goal_id: GoalId,
        principal: Writer,
        service: Service,
        response: Response,
        payload: Annotated[LifecycleAction | None, Body()] = None,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> GoalOut:
        snapshot = await service.act(
            principal.tenant_id,
            goal_id,
            action,
            reason=payload.reason if payload else None,
            if_match=if_match,
        )
        return goal_response(snapshot, response)

    act.__name__ = f"{action}_goal"
    return act


for _action, (_allowed, _target, _event) in TRANSITIONS.items():
    router.add_api_route(
        f"/goals/{{goal_id}}/{_action}",
        _lifecycle_route(_action),
        methods=["POST"],
        response_model=GoalOut,
        summary=f"{_action.capitalize()} a goal",
        description=f"{' | '.join(sorted(_allowed))} -> {_target}; emits "
        f"{_event.model_fields['type'].default}. Any other status answers 409 naming it.",
        responses=problem_responses(404, 409, 412),
    )


@router.get(
    "/goals/{goal_id}/events",
    response_model=None,
    summary="The goal's event history",
    description="Every event goals published about this goal, oldest first, exactly as "
    "published (CloudEvents structured JSON).",
    responses={
        200: {"model": GoalEventPage, "description": "A page of events"},
        **problem_responses(404),
    },
)
async def goal_events(
    goal_id: GoalId,
    principal: Reader,
    service: Service,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    payloads, next_cursor = await service.goal_events(
        principal.tenant_id, goal_id, cursor=cursor, limit=limit
    )
    body = b'{"items":[' + b",".join(payloads) + b'],"next_cursor":'
    body += orjson.dumps(next_cursor) + b"}"
    return Response(body, media_type="application/json")
