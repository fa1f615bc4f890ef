"""HTTP routes for webhook endpoints: thin, they validate, authorise and call the service layer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from services.notifications.api.deps import EndpointId, Endpoints, Reader, Writer
from services.notifications.schemas import (
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointPage,
    EndpointPatch,
    EndpointStats,
    SecretRotated,
    TestSent,
)
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["endpoints"])


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


@router.get("/endpoints", response_model=EndpointPage, summary="List webhook endpoints")
async def list_endpoints(
    principal: Reader,
    endpoints: Endpoints,
    cursor: Annotated[str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EndpointPage:
    return await endpoints.list_endpoints(principal.tenant_id, cursor, limit)


@router.get(
    "/endpoints/{endpoint_id}",
    response_model=EndpointOut,
    summary="Read a webhook endpoint",
    responses=problem_responses(404),
)
async def get_endpoint(
    endpoint_id: EndpointId, principal: Reader, endpoints: Endpoints
) -> EndpointOut:
    return await endpoints.get(principal.tenant_id, endpoint_id)


@router.patch(
    "/endpoints/{endpoint_id}",
    response_model=EndpointOut,
    summary="Change a webhook endpoint",
    description="Only the fields given change. Disabling emits endpoint.disabled (operator).",
    responses=problem_responses(404),
)
async def update_endpoint(
    endpoint_id: EndpointId, payload: EndpointPatch, principal: Writer, endpoints: Endpoints
) -> EndpointOut:
    return await endpoints.update(principal.tenant_id, endpoint_id, payload)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a webhook endpoint",
    description="Pending deliveries to it are cancelled; its history stays readable.",
    responses=problem_responses(404),
)
async def delete_endpoint(endpoint_id: EndpointId, principal: Writer, endpoints: Endpoints) -> None:
    await endpoints.delete(principal.tenant_id, endpoint_id)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    summary="Rotate the signing secret",
    description="The previous secret keeps signing alongside the new one for the overlap window.",
    responses=problem_responses(404),
)
async def rotate_secret(
    endpoint_id: EndpointId, principal: Writer, endpoints: Endpoints
) -> SecretRotated:
    return await endpoints.rotate_secret(principal.tenant_id, endpoint_id)


@router.post(
    "/endpoints/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestSent,
    summary="Send a test event (webhook.test) to this endpoint",
    responses=problem_responses(404),
)
async def send_test(endpoint_id: EndpointId, principal: Writer, endpoints: Endpoints) -> TestSent:
    return await endpoints.send_test(principal.tenant_id, endpoint_id)


@router.get(
    "/endpoints/{endpoint_id}/stats",
    response_model=EndpointStats,
    summary="Success rate and median latency of the last 24 hours",
    responses=problem_responses(404),
)
async def endpoint_stats(
    endpoint_id: EndpointId, principal: Reader, endpoints: Endpoints
) -> EndpointStats:
    return await endpoints.stats(principal.tenant_id, endpoint_id)
