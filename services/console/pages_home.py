"""The overview: deliveries by outcome over the last 24 hours, goals most at risk, failures.

Each section draws on one service and fails on its own: with notifications
down the chart says so while the risk ranking still shows.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from services.console.chart import build_chart
from services.console.models import DeadLetterPage, DeliveryOutcomes, GoalRiskPage, MessagePage
from services.console.upstream import SERVICES
from services.console.web import ConsoleDep, SignedIn, panel, render

router = APIRouter()
TOP_GOALS = 5


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def overview(request: Request, console: ConsoleDep, session: SignedIn) -> HTMLResponse:
    upstream, token = console.upstream, session.credential
    dead_letters = asyncio.gather(
        *(
            panel(
                upstream.model(
                    DeadLetterPage,
                    service,
                    "GET",
                    "/v1/dead-letters",
                    token,
                    params={"status": "dead", "limit": 1},
                )
            )
            for service in SERVICES
        )
    )
    outcomes, goals, failed, dead = await asyncio.gather(
        panel(
            upstream.model(
                DeliveryOutcomes, "notifications", "GET", "/v1/deliveries/outcomes", token
            )
        ),
        panel(
            upstream.model(
                GoalRiskPage,
                "sessions",
                "GET",
                "/v1/goals",
                token,
                params={"order": "risk", "status": "active", "limit": TOP_GOALS},
            )
        ),
        panel(
            upstream.model(
                MessagePage,
                "notifications",
                "GET",
                "/v1/messages",
                token,
                params={"status": "failed", "limit": 1},
            )
        ),
        dead_letters,
    )
    chart = build_chart(outcomes.value) if outcomes.value is not None else None
    return render(
        request,
        "overview.html",
        outcomes=outcomes,
        chart=chart,
        goals=goals,
        failed=failed,
        dead=dict(zip(SERVICES, dead, strict=True)),
    )
