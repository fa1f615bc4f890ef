"""Messages: the filtered list, one message's deliveries and attempts as a timeline, replay.

A message is one event as notifications received it; its page shows every
delivery it produced (webhook or email), each attempt in order with its
status code, latency, error and the start of the response, and why each
possible target was or was not chosen (the routing record).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.models import Accepted, MessageDetail, MessagePage, Routing
from services.console.pages_endpoints import Cursor, FormId, parse_instant
from services.console.web import ConsoleDep, Protected, SignedIn, link, panel, render
from shared.events.envelope import EVENT_ID_PATTERN
from shared.logs import get_logger

log = get_logger(__name__)
router = APIRouter()

MessageId = Annotated[str, Path(pattern=EVENT_ID_PATTERN)]
MessageStatus = Literal["pending", "succeeded", "failed", "unrouted"]
STATUSES: tuple[str, ...] = ("pending", "succeeded", "failed", "unrouted")


@router.get("/messages", response_class=HTMLResponse, include_in_schema=False)
async def messages(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    event_type: Annotated[
        str | None, Query(max_length=100, pattern=r"^([a-z_]+\.[a-z_]+)?$")
    ] = None,
    status: Annotated[MessageStatus | Literal[""] | None, Query()] = None,
    goal_id: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Cursor = None,
) -> HTMLResponse:
    filters = {
        "event_type": event_type or None,
        "status": status or None,
        "goal_id": (goal_id or "").strip() or None,
        "since": since or None,
        "until": until or None,
    }
    params: dict[str, str | int | None] = {
        "event_type": filters["event_type"],
        "status": filters["status"],
        "goal_id": filters["goal_id"],
        "since": parse_instant(since, "since", "/messages").isoformat() if since else None,
        "until": parse_instant(until, "until", "/messages").isoformat() if until else None,
        "cursor": cursor,
        "limit": console.settings.page_size,
    }
    page = await console.upstream.model(
        MessagePage, "notifications", "GET", "/v1/messages", session.credential, params=params
    )
    return render(
        request,
        "messages.html",
        page=page,
        filters=filters,
        filtered=any(filters.values()),
        cursor=cursor,
        statuses=STATUSES,
    )


@router.get("/messages/{message_id}", response_class=HTMLResponse, include_in_schema=False)
async def message(
    request: Request, message_id: MessageId, console: ConsoleDep, session: SignedIn
) -> HTMLResponse:
    upstream, token = console.upstream, session.credential
    detail, routing = await asyncio.gather(
        upstream.model(MessageDetail, "notifications", "GET", f"/v1/messages/{message_id}", token),
        panel(
            upstream.model(
                Routing, "notifications", "GET", f"/v1/events/{message_id}/routing", token
            )
        ),
    )
    replayable = [d for d in detail.deliveries if d.channel == "webhook" and d.endpoint_id]
    return render(
        request,
        "message.html",
        message=detail,
        routing=routing,
        event_json=json.dumps(detail.event, indent=2, sort_keys=True),
        replay_endpoints=sorted({d.endpoint_id for d in replayable if d.endpoint_id}),
    )


@router.post("/messages/{message_id}/replay", response_model=None, include_in_schema=False)
async def replay(
    message_id: MessageId,
    console: ConsoleDep,
    session: Protected,
    endpoint_id: Annotated[str, Form(max_length=36, pattern=r"^[A-Za-z0-9-]*$")] = "",
    form_id: FormId = "",
) -> Response:
    accepted = await console.upstream.model(
        Accepted,
        "notifications",
        "POST",
        f"/v1/messages/{message_id}/replay",
        session.credential,
        json={"endpoint_id": endpoint_id} if endpoint_id else None,
        idempotency_key=f"console-{form_id}" if form_id else None,
    )
    log.info("console.message.replayed", message_id=message_id, deliveries=len(accepted.deliveries))
    notice = "replayed" if accepted.deliveries else "replay-none"
    return RedirectResponse(link(f"/messages/{message_id}", notice=notice), 303)
