"""Goals ranked by at-risk score, and one goal's whole story across the three services.

The ranking is the sessions service's (``GET /v1/goals?order=risk``). A goal's
page joins what each service knows: participants and milestones (goals),
check-in history, streak, the forecast of reminders and escalations and
each participant's calendar feed URLs (sessions), and every event about the
goal with the deliveries it produced (notifications). A service that is down
blanks only its own sections.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse

from services.console.models import (
    CheckinHistory,
    Forecast,
    Goal,
    GoalCalendars,
    GoalRiskPage,
    MessagePage,
)
from services.console.pages_endpoints import Cursor
from services.console.web import ConsoleDep, SignedIn, panel, render

router = APIRouter()

GoalId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]
GoalStatus = Literal["draft", "active", "paused", "completed", "abandoned"]
GOAL_STATUSES: tuple[str, ...] = ("active", "paused", "draft", "completed", "abandoned")
HISTORY_PAGE = 10
FORECAST_SHOWN = 15


@router.get("/goals", response_class=HTMLResponse, include_in_schema=False)
async def goals(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    status: Annotated[GoalStatus | Literal["all"], Query()] = "active",
    cursor: Cursor = None,
) -> HTMLResponse:
    page = await console.upstream.model(
        GoalRiskPage,
        "sessions",
        "GET",
        "/v1/goals",
        session.credential,
        params={
            "order": "risk",
            "status": None if status == "all" else status,
            "cursor": cursor,
            "limit": console.settings.page_size,
        },
    )
    return render(
        request, "goals.html", page=page, status=status, cursor=cursor, statuses=GOAL_STATUSES
    )


@router.get("/goals/{goal_id}", response_class=HTMLResponse, include_in_schema=False)
async def goal(
    request: Request,
    goal_id: GoalId,
    console: ConsoleDep,
    session: SignedIn,
    checkins_before: Annotated[datetime | None, Query()] = None,
    events_cursor: Cursor = None,
) -> HTMLResponse:
    upstream, token = console.upstream, session.credential
    before = checkins_before.isoformat() if checkins_before else None
    detail, history, forecast, events, calendars = await asyncio.gather(
        upstream.model(Goal, "goals", "GET", f"/v1/goals/{goal_id}", token),
        panel(
            upstream.model(
                CheckinHistory,
                "sessions",
                "GET",
                f"/v1/goals/{goal_id}/checkins",
                token,
                params={"limit": HISTORY_PAGE, "before": before},
            )
        ),
        panel(upstream.model(Forecast, "sessions", "GET", f"/v1/goals/{goal_id}/schedule", token)),
        panel(
            upstream.model(
                MessagePage,
                "notifications",
                "GET",
                "/v1/messages",
                token,
                params={
                    "goal_id": goal_id,
                    "cursor": events_cursor,
                    "limit": console.settings.page_size,
                },
            )
        ),
        panel(
            upstream.model(
                GoalCalendars, "sessions", "GET", f"/v1/goals/{goal_id}/calendars", token
            )
        ),
    )
    return render(
        request,
        "goal.html",
        goal=detail,
        history=history,
        forecast=forecast,
        forecast_shown=FORECAST_SHOWN,
        events=events,
        calendars=calendars,
        checkins_before=before,
        events_cursor=events_cursor,
    )
