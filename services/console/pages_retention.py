"""Retention: how long each service keeps each kind of record for this tenant, and changing it.

Each service answers for its own tables (``GET``/``PUT /v1/retention``, the
``tenant:admin`` scope), so the page has one section per service and a
credential without that scope sees the services' refusal in each section.
Windows are shown and entered in days, the unit a retention policy is
written in; a blank field returns the kind to the deployment's default.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.models import Retention
from services.console.upstream import SERVICES, Service
from services.console.web import ConsoleDep, PageError, Protected, SignedIn, link, panel, render
from shared.logs import get_logger

log = get_logger(__name__)
router = APIRouter()

DAY = 86_400
FIELD_PREFIX = "days."


def duration(seconds: int) -> str:
    """A window as a person reads it: days from a day up, else whole hours, minutes or seconds."""
    if seconds >= DAY:
        return _plural(f"{seconds / DAY:.4g}", "day")
    for unit, size in (("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            return _plural(str(seconds // size), unit)
    return _plural(str(seconds), "second")


def _plural(count: str, unit: str) -> str:
    return f"{count} {unit}" if count == "1" else f"{count} {unit}s"


def days(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / DAY:g}"


@router.get("/retention", response_class=HTMLResponse, include_in_schema=False)
async def retention(request: Request, console: ConsoleDep, session: SignedIn) -> HTMLResponse:
    sections = {
        service: await panel(
            console.upstream.model(Retention, service, "GET", "/v1/retention", session.credential)
        )
        for service in SERVICES
    }
    return render(request, "retention.html", sections=sections, duration=duration, days=days)


def windows_from_form(form: Any, service: Service) -> dict[str, int | None]:
    """``days.<kind>`` fields to the service's ``{kind: seconds | null}``; a bad number is 400."""
    windows: dict[str, int | None] = {}
    for name, raw in form.multi_items():
        if not name.startswith(FIELD_PREFIX) or not isinstance(raw, str):
            continue
        kind, text = name.removeprefix(FIELD_PREFIX), raw.strip()
        if not text:
            windows[kind] = None
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0 or value > 36_500:
            raise PageError(
                400,
                "The window is not valid",
                f"{kind}: give a number of days above 0 (such as 30 or 0.5), or leave it blank",
                field_errors=[{"field": kind, "message": "not a number of days"}],
                back="/retention",
            )
        windows[kind] = round(value * DAY)
    if not windows:
        raise PageError(
            400, "Nothing to change", "The form named no kind of record.", back="/retention"
        )
    return windows


@router.post("/retention/{service}", response_model=None, include_in_schema=False)
async def set_retention(
    request: Request, service: Service, console: ConsoleDep, session: Protected
) -> Response:
    windows = windows_from_form(await request.form(), service)
    await console.upstream.model(
        Retention, service, "PUT", "/v1/retention", session.credential, json={"windows": windows}
    )
    log.info("console.retention.changed", service=service, kinds=sorted(windows))
    return RedirectResponse(link("/retention", notice="retention-saved"), 303)
