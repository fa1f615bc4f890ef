"""Failures: what a consumer dead-lettered (per service, with re-drive) and failed deliveries.

Dead letters come from each service's ``GET /v1/dead-letters``; re-driving
one publishes it again to its source topic, unchanged, where consumers that
handled it already skip it by event id. Failed deliveries are messages whose
deliveries failed for good; each can be replayed from here or from its page,
and an endpoint's page recovers everything it missed since a time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.models import DeadLetter, DeadLetterPage, MessagePage
from services.console.pages_endpoints import Cursor, FormId
from services.console.upstream import SERVICES, Service
from services.console.web import ConsoleDep, Protected, SignedIn, link, panel, render
from shared.logs import get_logger

log = get_logger(__name__)
router = APIRouter()

DeadLetterId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
]


@router.get("/failures", response_class=HTMLResponse, include_in_schema=False)
async def failures(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    service: Annotated[Service, Query()] = "notifications",
    status: Annotated[Literal["dead", "redriven", "all"], Query()] = "dead",
    cursor: Cursor = None,
    failed_cursor: Cursor = None,
) -> HTMLResponse:
    upstream, token = console.upstream, session.credential
    dead = await panel(
        upstream.model(
            DeadLetterPage,
            service,
            "GET",
            "/v1/dead-letters",
            token,
            params={
                "status": None if status == "all" else status,
                "cursor": cursor,
                "limit": console.settings.page_size,
            },
        )
    )
    failed = await panel(
        upstream.model(
            MessagePage,
            "notifications",
            "GET",
            "/v1/messages",
            token,
            params={
                "status": "failed",
                "cursor": failed_cursor,
                "limit": console.settings.page_size,
            },
        )
    )
    return render(
        request,
        "failures.html",
        service=service,
        services=SERVICES,
        status=status,
        dead=dead,
        failed=failed,
        cursor=cursor,
        failed_cursor=failed_cursor,
    )


@router.post(
    "/failures/dead-letters/{service}/{dead_letter_id}/redrive",
    response_model=None,
    include_in_schema=False,
)
async def redrive(
    service: Service,
    dead_letter_id: DeadLetterId,
    console: ConsoleDep,
    session: Protected,
    form_id: FormId = "",
) -> Response:
    redriven = await console.upstream.model(
        DeadLetter,
        service,
        "POST",
        f"/v1/dead-letters/{dead_letter_id}/redrive",
        session.credential,
        idempotency_key=f"console-{form_id}" if form_id else None,
    )
    log.info("console.dead_letter.redriven", service=service, dead_letter_id=redriven.id)
    return RedirectResponse(link("/failures", service=service, notice="redriven"), 303)
