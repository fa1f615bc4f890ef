"""HTTP routes for operators: messages, deliveries and attempts, replay, recover, routing."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import AwareDatetime

from services.notifications.api.deps import EndpointId, Operations, Reader, Writer
from services.notifications.schemas import (
    NO_NUL,
    DeliveryOutcomes,
    MessageDetail,
    MessagePage,
    RecoverAccepted,
    ReplayAccepted,
    ReplayRequest,
    Routing,
)
from shared.events.envelope import EVENT_ID_PATTERN
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["operations"])

Identifier = Annotated[str, Path(pattern=EVENT_ID_PATTERN)]


@router.get("/messages", response_model=MessagePage, summary="List messages, newest first")
async def list_messages(
    principal: Reader,
    operations: Operations,
    event_type: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z_]+\.[a-z_]+$")] = None,
    goal_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    status: Literal["pending", "succeeded", "failed", "unrouted"] | None = None,
    since: Annotated[AwareDatetime | None, Query(description="Received at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Received before")] = None,
    cursor: Annotated[str | None, Query(max_length=500, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    return await operations.list_messages(
        principal.tenant_id,
        event_type=event_type,
        goal_id=goal_id,
        status=status,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/messages/{message_id}",
    response_model=MessageDetail,
    summary="A message with its deliveries and every attempt",
    responses=problem_responses(404),
)
async def get_message(
    message_id: Identifier, principal: Reader, operations: Operations
) -> MessageDetail:
    return await operations.message(principal.tenant_id, message_id)


@router.post(
    "/messages/{message_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayAccepted,
    summary="Send a message again, with the same webhook-id",
    responses=problem_responses(404, 409),
)
async def replay_message(
    message_id: Identifier,
    principal: Writer,
    operations: Operations,
    payload: Annotated[ReplayRequest | None, Body()] = None,
) -> ReplayAccepted:
    endpoint_id = payload.endpoint_id if payload else None
    return await operations.replay(principal.tenant_id, message_id, endpoint_id)


@router.post(
    "/endpoints/{endpoint_id}/recover",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RecoverAccepted,
    summary="Resend everything that failed for this endpoint since a time",
    responses=problem_responses(404, 409),
)
async def recover_endpoint(
    endpoint_id: EndpointId,
    since: Annotated[AwareDatetime, Query()],
    principal: Writer,
    operations: Operations,
) -> RecoverAccepted:
    return await operations.recover(principal.tenant_id, endpoint_id, since)


@router.get(
    "/deliveries/outcomes",
    response_model=DeliveryOutcomes,
    summary="Deliveries by status, per hour, over the last hours (24 by default)",
    description="Each delivery counts once, in the hour it last changed (succeeded, failed "
    "for good, pending its next attempt, cancelled, suppressed, superseded by a replay).",
)
async def delivery_outcomes(
    principal: Reader,
    operations: Operations,
    hours: Annotated[int, Query(ge=1, le=168)] = 24,
) -> DeliveryOutcomes:
    return await operations.outcomes(principal.tenant_id, hours)


@router.get(
    "/events/{event_id}/routing",
    response_model=Routing,
    summary="Which targets an event matched, and why the others did not",
    responses=problem_responses(404),
)
async def event_routing(event_id: Identifier, principal: Reader, operations: Operations) -> Routing:
    return await operations.routing(principal.tenant_id, event_id)
