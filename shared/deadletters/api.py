"""``/v1/dead-letters``: the same two routes on every service, scoped by the service's name.

No ``from __future__ import annotations`` here: the routes are built inside a
function, and FastAPI must see their annotations evaluated, not as strings
naming that function's locals.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from shared.auth.tokens import Principal
from shared.deadletters.schemas import DeadLetterOut, DeadLetterPage, DeadLetterStatus
from shared.deadletters.service import DeadLetterService
from shared.http.deps import from_app_state
from shared.http.problems import problem_responses
from shared.http.security import require

DeadLetterId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


Service = Annotated[DeadLetterService, Depends(from_app_state("dead_letters"))]


def dead_letters_router(service: str) -> APIRouter:
    """The routes, requiring ``<service>:read`` to list and ``<service>:write`` to re-drive."""
    router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])
    reader = Annotated[Principal, Depends(require(f"{service}:read"))]
    writer = Annotated[Principal, Depends(require(f"{service}:write"))]

    @router.get(
        "",
        response_model=DeadLetterPage,
        summary="Messages this service's consumers could not process, newest first",
    )
    async def list_dead_letters(
        principal: reader,
        dead_letters: Service,
        status: DeadLetterStatus | None = None,
        cursor: Annotated[str | None, Query(max_length=500, pattern=r"^[A-Za-z0-9_-]*$")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> DeadLetterPage:
        return await dead_letters.page(principal, status=status, cursor=cursor, limit=limit)

    @router.post(
        "/{dead_letter_id}/redrive",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=DeadLetterOut,
        summary="Publish a dead letter again to its source topic, unchanged",
        responses=problem_responses(404, 409, 503),
    )
    async def redrive_dead_letter(
        dead_letter_id: DeadLetterId,
        principal: writer,
        dead_letters: Service,
    ) -> DeadLetterOut:
        return await dead_letters.redrive(principal, dead_letter_id)

    return router
