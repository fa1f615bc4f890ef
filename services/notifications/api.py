"""HTTP routes of the notifications service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from services.notifications.schemas import EndpointCreate, EndpointCreated, EndpointOut
from services.notifications.service import EndpointsService
from shared.auth.tokens import Principal
from shared.http.problems import problem_responses
from shared.http.security import require

router = APIRouter(prefix="/v1", tags=["endpoints"])

Reader = Annotated[Principal, Depends(require("notifications:read"))]
Writer = Annotated[Principal, Depends(require("notifications:write"))]


def get_endpoints(request: Request) -> EndpointsService:
    service: EndpointsService = request.app.state.endpoints
    return service


Endpoints = Annotated[EndpointsService, Depends(get_endpoints)]


@router.post(
    "/endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=EndpointCreated,
    summary="Register a webhook endpoint",
    description="The answer carries the signing secret; it is never shown again.",
)
async def create_endpoint(
    payload: EndpointCreate, principal: Writer, endpoints: Endpoints, response: Response
) -> EndpointCreated:
    created = await endpoints.create(principal.tenant_id, payload)
    response.headers["Location"] = f"/v1/endpoints/{created.id}"
    return created


@router.get(
    "/endpoints/{endpoint_id}",
    response_model=EndpointOut,
    summary="Read a webhook endpoint",
    responses=problem_responses(404),
)
async def get_endpoint(endpoint_id: str, principal: Reader, endpoints: Endpoints) -> EndpointOut:
    return await endpoints.get(principal.tenant_id, endpoint_id)
