"""Liveness and readiness.

``/healthz`` answers while the process can serve at all; ``/readyz`` only
while its database and broker answer, so an orchestrator stops routing to a
replica that cannot do its work but does not restart it for a broker outage.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from shared.http.problems import problem_response, problem_responses


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    service: str


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, bool]


router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz(request: Request) -> Health:
    return Health(service=request.app.state.runtime.service)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database and the broker are reachable",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> Readiness | Response:
    checks = await request.app.state.runtime.readiness()
    if all(checks.values()):
        return Readiness(checks=checks)
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    return problem_response(
        503,
        detail=f"not ready: {failing} unreachable",
        slug="not-ready",
        headers={"Retry-After": "5"},
        checks=checks,
    )
