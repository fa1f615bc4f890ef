"""Erasure routes: ask to forget a person (tenant-admin), follow how far it got."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import EmailStr

from services.goals.privacy.export import PeopleExport
from services.goals.privacy.schemas import ErasureOut, ErasureRequest
from services.goals.privacy.service import ErasureService
from shared.auth.tokens import TENANT_ADMIN_SCOPE, Principal
from shared.http.deps import from_app_state
from shared.http.problems import problem_responses
from shared.http.security import require

router = APIRouter(prefix="/v1", tags=["privacy"])
Admin = Annotated[Principal, Depends(require(TENANT_ADMIN_SCOPE))]
Erasures = Annotated[ErasureService, Depends(from_app_state("erasures"))]
Exports = Annotated[PeopleExport, Depends(from_app_state("people_export"))]
ErasureId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$", description="The erasure's id.")]


@router.post(
    "/erasures",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureOut,
    summary="Erase a person",
    description="Forgets the person in every service of the tenant: goals at once (the "
    "person becomes a stand-in on every goal, which emits goal.updated), sessions and "
    "notifications on `person.erasure_requested`. From then on no email goes to the address "
    "in this tenant. Follow `GET /v1/erasures/{id}`. A person nothing is held about is an "
    "erasure that completes with nothing changed; asking again for a person already erased "
    "answers the same erasure. Needs the `tenant:admin` scope.",
    responses=problem_responses(403),
)
async def request_erasure(
    payload: ErasureRequest, principal: Admin, erasures: Erasures, response: Response
) -> ErasureOut:
    erasure, _ = await erasures.request(principal.tenant_id, str(payload.email), payload.reference)
    response.headers["Location"] = f"/v1/erasures/{erasure.id}"
    return erasure


@router.get(
    "/erasures/{erasure_id}",
    response_model=ErasureOut,
    summary="An erasure and each service's part",
    description="`completed` once goals, sessions and notifications have each erased their "
    "part. Needs the `tenant:admin` scope.",
    responses=problem_responses(403, 404),
)
async def get_erasure(erasure_id: ErasureId, principal: Admin, erasures: Erasures) -> ErasureOut:
    return await erasures.get(principal.tenant_id, erasure_id)


@router.get(
    "/people/export",
    summary="Everything the services hold about a person",
    description="One JSON document: the person's goals (with their roles), progress reports and "
    "erasures from goals; their projections, check-ins and coaching sessions from sessions; "
    "their preference, unsubscribes, digest entries, emails and suppression from "
    "notifications (fetched with your credential). Answers an access request. A service "
    "that does not answer makes it 502. Needs the `tenant:admin` scope.",
    responses=problem_responses(403, 502),
)
async def export_person(
    email: Annotated[EmailStr, Query(description="The person's address.")],
    principal: Admin,
    request: Request,
    exports: Exports,
) -> dict[str, Any]:
    authorization = request.headers.get("authorization", "")
    return await exports.export(principal.tenant_id, str(email), authorization)
