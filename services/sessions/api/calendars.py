"""Calendar feeds: the feed itself (the URL's token is the credential), and managing the URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from services.sessions.api.deps import Calendars, GoalId, Reader, Writer
from services.sessions.schemas import CalendarLink, GoalCalendars
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1")
ICALENDAR = "text/calendar; charset=utf-8"
FeedId = Annotated[str, Path(min_length=1, max_length=36, description="The feed's id.")]


@router.get(
    "/calendars/{token}.ics",
    tags=["calendars"],
    summary="A calendar feed (RFC 5545): check-ins and coaching sessions",
    description=(
        "No bearer credential: the token in the URL is one. Answers `ETag`; a request "
        "with a matching `If-None-Match` gets 304. An unknown, expired or revoked token "
        "answers 404."
    ),
    responses={
        200: {
            "description": "The feed",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        },
        304: {"description": "Not modified since the ETag given"},
        **problem_responses(404),
    },
    response_class=Response,
)
async def feed(
    request: Request,
    token: Annotated[str, Path(min_length=1, max_length=2048)],
    service: Calendars,
) -> Response:
    rendered = await service.render(token)
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": "private, no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex",
    }
    if _matches(request.headers.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    headers["Content-Disposition"] = 'inline; filename="followthrough.ics"'
    return Response(rendered.body, media_type=ICALENDAR, headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


@router.get(
    "/goals/{goal_id}/calendars",
    response_model=GoalCalendars,
    tags=["calendars"],
    summary="Each participant's calendar feed URLs (this goal, and all their goals)",
    responses=problem_responses(404),
)
async def goal_calendars(goal_id: GoalId, principal: Reader, service: Calendars) -> GoalCalendars:
    return await service.goal_calendars(principal.tenant_id, goal_id)


@router.post(
    "/calendars/{feed_id}/rotate",
    response_model=CalendarLink,
    tags=["calendars"],
    summary="Give a feed a new URL (the old one stops working; a revoked feed works again)",
    responses=problem_responses(404),
)
async def rotate(feed_id: FeedId, principal: Writer, service: Calendars) -> CalendarLink:
    return await service.rotate(principal.tenant_id, feed_id)


@router.post(
    "/calendars/{feed_id}/revoke",
    response_model=CalendarLink,
    tags=["calendars"],
    summary="Revoke a feed's URL (it answers 404 until rotated)",
    responses=problem_responses(404),
)
async def revoke(feed_id: FeedId, principal: Writer, service: Calendars) -> CalendarLink:
    return await service.revoke(principal.tenant_id, feed_id)
