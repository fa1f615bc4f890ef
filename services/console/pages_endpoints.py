"""Webhook endpoints: state and 24-hour figures, register, enable/disable, rotate, test, recover.

A signing secret (on registration or rotation) is shown exactly once: the
post puts it in a sealed cookie that lives two minutes and only on the
secret page's path, redirects there, and that page clears the cookie as it
shows it. Reloading the page shows it no more, and the console keeps no copy.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.models import (
    Accepted,
    Endpoint,
    EndpointCreated,
    EndpointPage,
    EndpointStats,
    SecretRotated,
    TestSent,
)
from services.console.signin import SECRET_COOKIE, SECRET_SHOWN_SECONDS
from services.console.upstream import UpstreamError
from services.console.web import (
    ConsoleDep,
    PageError,
    Protected,
    SignedIn,
    link,
    panel,
    render,
)
from shared.logs import get_logger

log = get_logger(__name__)
router = APIRouter()

EndpointId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,36}$")]
Cursor = Annotated[str | None, Query(max_length=600, pattern=r"^[A-Za-z0-9_=-]*$")]
FormId = Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]
FIELD_LABELS = {"body.url": "URL", "body.description": "Description"}


def field_label(field: str) -> str:
    if field.startswith("body.event_types"):
        return "Event types"
    return FIELD_LABELS.get(field, field)


def parse_instant(value: str, field: str, back: str) -> datetime:
    """A form's date and time: ISO 8601, with an offset or else read as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PageError(
            400,
            "The time is not valid",
            f"{field}: give a date and time such as 2026-05-04T09:30",
            field_errors=[{"field": field, "message": "not a date and time"}],
            back=back,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/endpoints", response_class=HTMLResponse, include_in_schema=False)
async def endpoints(
    request: Request, console: ConsoleDep, session: SignedIn, cursor: Cursor = None
) -> HTMLResponse:
    return await _endpoints_page(request, console, session.credential, cursor)


async def _endpoints_page(
    request: Request,
    console: ConsoleDep,
    token: str,
    cursor: str | None,
    *,
    status: int = 200,
    form_errors: list[dict[str, str]] | None = None,
    form_values: dict[str, str] | None = None,
) -> HTMLResponse:
    upstream = console.upstream
    page = await upstream.model(
        EndpointPage,
        "notifications",
        "GET",
        "/v1/endpoints",
        token,
        params={"cursor": cursor, "limit": console.settings.page_size},
    )
    stats = await asyncio.gather(
        *(
            panel(
                upstream.model(
                    EndpointStats, "notifications", "GET", f"/v1/endpoints/{e.id}/stats", token
                )
            )
            for e in page.items
        )
    )
    return render(
        request,
        "endpoints.html",
        status,
        page=page,
        rows=list(zip(page.items, stats, strict=True)),
        cursor=cursor,
        form_errors=form_errors or [],
        form_values=form_values or {},
    )


@router.post("/endpoints", response_model=None, include_in_schema=False)
async def register_endpoint(
    request: Request,
    console: ConsoleDep,
    session: Protected,
    url: Annotated[str, Form(max_length=2100)] = "",
    description: Annotated[str, Form(max_length=600)] = "",
    event_types: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    types = [t for t in re.split(r"[\s,]+", event_types) if t]
    body: dict[str, object] = {"url": url.strip(), "event_types": types}
    if description.strip():
        body["description"] = description.strip()
    try:
        created = await console.upstream.model(
            EndpointCreated, "notifications", "POST", "/v1/endpoints", session.credential, json=body
        )
    except UpstreamError as error:
        if error.kind != "invalid":
            raise
        errors = [
            {"field": field_label(e["field"]), "message": e["message"]} for e in error.field_errors
        ] or [{"field": "", "message": error.detail}]
        values = {"url": url, "description": description, "event_types": event_types}
        return await _endpoints_page(
            request,
            console,
            session.credential,
            None,
            status=422,
            form_errors=errors,
            form_values=values,
        )
    log.info("console.endpoint.registered", endpoint_id=created.id)
    return _show_secret_once(console, created.id, created.secret)


def _show_secret_once(console: ConsoleDep, endpoint_id: str, secret: str) -> Response:
    sealed = console.sealer.seal(
        "secret",
        {"endpoint": endpoint_id, "secret": secret, "exp": time.time() + SECRET_SHOWN_SECONDS},
    )
    response = RedirectResponse(f"/endpoints/{endpoint_id}/secret", 303)
    response.set_cookie(
        SECRET_COOKIE,
        sealed,
        max_age=SECRET_SHOWN_SECONDS,
        httponly=True,
        samesite="strict",
        secure=console.settings.cookie_secure,
        path=f"/endpoints/{endpoint_id}/secret",
    )
    return response


@router.get("/endpoints/{endpoint_id}/secret", response_class=HTMLResponse, include_in_schema=False)
async def endpoint_secret(
    request: Request, endpoint_id: EndpointId, console: ConsoleDep, session: SignedIn
) -> HTMLResponse:
    value = console.sealer.open("secret", request.cookies.get(SECRET_COOKIE))
    secret = None
    if value and value.get("endpoint") == endpoint_id and float(value.get("exp", 0)) > time.time():
        secret = str(value.get("secret"))
    endpoint = await console.upstream.model(
        Endpoint, "notifications", "GET", f"/v1/endpoints/{endpoint_id}", session.credential
    )
    response = render(request, "endpoint_secret.html", endpoint=endpoint, secret=secret)
    response.delete_cookie(SECRET_COOKIE, path=f"/endpoints/{endpoint_id}/secret")
    return response


@router.get("/endpoints/{endpoint_id}", response_class=HTMLResponse, include_in_schema=False)
async def endpoint_detail(
    request: Request, endpoint_id: EndpointId, console: ConsoleDep, session: SignedIn
) -> HTMLResponse:
    upstream, token = console.upstream, session.credential
    endpoint, stats = await asyncio.gather(
        upstream.model(Endpoint, "notifications", "GET", f"/v1/endpoints/{endpoint_id}", token),
        panel(
            upstream.model(
                EndpointStats, "notifications", "GET", f"/v1/endpoints/{endpoint_id}/stats", token
            )
        ),
    )
    since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=24)
    return render(
        request,
        "endpoint.html",
        endpoint=endpoint,
        stats=stats,
        recover_since=since.strftime("%Y-%m-%dT%H:%M"),
    )


@router.post("/endpoints/{endpoint_id}/enable", response_model=None, include_in_schema=False)
async def enable_endpoint(
    endpoint_id: EndpointId, console: ConsoleDep, session: Protected
) -> Response:
    return await _set_enabled(console, session.credential, endpoint_id, enabled=True)


@router.post("/endpoints/{endpoint_id}/disable", response_model=None, include_in_schema=False)
async def disable_endpoint(
    endpoint_id: EndpointId, console: ConsoleDep, session: Protected
) -> Response:
    return await _set_enabled(console, session.credential, endpoint_id, enabled=False)


async def _set_enabled(
    console: ConsoleDep, token: str, endpoint_id: str, *, enabled: bool
) -> Response:
    await console.upstream.call(
        "notifications", "PATCH", f"/v1/endpoints/{endpoint_id}", token, json={"enabled": enabled}
    )
    log.info(
        "console.endpoint.enabled" if enabled else "console.endpoint.disabled",
        endpoint_id=endpoint_id,
    )
    notice = "enabled" if enabled else "disabled"
    return RedirectResponse(link(f"/endpoints/{endpoint_id}", notice=notice), 303)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=None, include_in_schema=False)
async def rotate_secret(
    endpoint_id: EndpointId, console: ConsoleDep, session: Protected
) -> Response:
    rotated = await console.upstream.model(
        SecretRotated,
        "notifications",
        "POST",
        f"/v1/endpoints/{endpoint_id}/rotate-secret",
        session.credential,
    )
    log.info("console.endpoint.secret_rotated", endpoint_id=endpoint_id)
    return _show_secret_once(console, endpoint_id, rotated.secret)


@router.post("/endpoints/{endpoint_id}/test", response_model=None, include_in_schema=False)
async def send_test(
    endpoint_id: EndpointId, console: ConsoleDep, session: Protected, form_id: FormId = ""
) -> Response:
    sent = await console.upstream.model(
        TestSent,
        "notifications",
        "POST",
        f"/v1/endpoints/{endpoint_id}/test",
        session.credential,
        idempotency_key=f"console-{form_id}" if form_id else None,
    )
    log.info("console.endpoint.test_sent", endpoint_id=endpoint_id, message_id=sent.message_id)
    return RedirectResponse(link(f"/messages/{sent.message_id}", notice="test-sent"), 303)


@router.post("/endpoints/{endpoint_id}/recover", response_model=None, include_in_schema=False)
async def recover(
    endpoint_id: EndpointId,
    console: ConsoleDep,
    session: Protected,
    since: Annotated[str, Form(max_length=64)] = "",
    form_id: FormId = "",
) -> Response:
    back = f"/endpoints/{endpoint_id}"
    moment = parse_instant(since, "since", back)
    accepted = await console.upstream.model(
        Accepted,
        "notifications",
        "POST",
        f"/v1/endpoints/{endpoint_id}/recover",
        session.credential,
        params={"since": moment.isoformat()},
        idempotency_key=f"console-{form_id}" if form_id else None,
    )
    log.info(
        "console.endpoint.recovered", endpoint_id=endpoint_id, deliveries=len(accepted.deliveries)
    )
    return RedirectResponse(link(back, notice="recovered"), 303)
