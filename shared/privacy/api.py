"""The export route every service has: what it holds about one person (tenant-admin scope).

Goals answers ``GET /v1/people/export`` with the whole document (its own part
and the other services' parts, fetched with the caller's credential); sessions
and notifications answer ``GET /v1/people/export/part`` with theirs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import EmailStr

from shared.auth.tokens import TENANT_ADMIN_SCOPE, Principal
from shared.http.problems import problem_responses
from shared.http.security import require

Admin = Annotated[Principal, Depends(require(TENANT_ADMIN_SCOPE))]
EmailQuery = Annotated[EmailStr, Query(description="The person's address.")]
Exporter = Callable[[str, str], Awaitable[dict[str, Any]]]
"""(tenant, lower-cased email) -> this service's part of the export."""


def part_router(service: str) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["privacy"])

    @router.get(
        "/people/export/part",
        summary=f"What {service} holds about a person",
        description="This service's part of `GET /v1/people/export` on goals (which gathers "
        "every part). Needs the `tenant:admin` scope.",
        responses=problem_responses(403),
    )
    async def export_part(email: EmailQuery, principal: Admin, request: Request) -> dict[str, Any]:
        exporter: Exporter = request.app.state.person_export
        return await exporter(principal.tenant_id, str(email).strip().lower())

    return router
