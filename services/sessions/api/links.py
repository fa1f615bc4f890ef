"""Signed links from emails: check in, acknowledge a miss, or snooze, without a credential.

Notifications builds ``{SESSIONS_PUBLIC_URL}/v1/links/{action}?token=<t>``
with :func:`shared.auth.links.sign_link` (subject: the goal id; claims
``occ``: the occurrence or null, ``role``: the recipient's role). ``GET``
only shows a confirmation page with a form, because mail scanners and link
previews fetch every link in a message; the ``POST`` of that form (field
``token``) performs the action and answers a small page. A bad or expired
link answers 400 or 410: as a page for a browser (``Accept: text/html``),
as a problem document otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

from services.sessions.calendars.service import CalendarService
from services.sessions.recurrence import zone_of
from services.sessions.schemas import CheckinCreate
from services.sessions.service import CheckinService
from services.sessions.settings import SessionsSettings
from shared.auth.links import LinkError, verify_link
from shared.events.catalog.common import ROLES, Role
from shared.http.problems import PROBLEM_MEDIA_TYPE, ProblemError
from shared.logs import get_logger

log = get_logger(__name__)
LinkAction = Literal["checkin", "acknowledge", "snooze"]
SOURCE = "email-link"

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parents[1] / "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass(frozen=True)
class _Copy:
    heading: str
    prompt: str
    button: str
    done: str


COPY: dict[str, _Copy] = {
    "checkin": _Copy(
        "Check in",
        "Confirm that you have done your check-in for this goal.",
        "I've checked in",
        "Thank you, your check-in is recorded.",
    ),
    "acknowledge": _Copy(
        "Acknowledge the missed check-in",
        "Confirm that you have seen the missed check-in. Pending escalations are cancelled.",
        "Acknowledge",
        "Acknowledged. Pending escalations for this miss are cancelled.",
    ),
    "snooze": _Copy(
        "Snooze the check-in",
        "Push the current check-in's deadline back. Each check-in can be snoozed once.",
        "Snooze",
        "Snoozed. The new deadline is {deadline}.",
    ),
}

_HTML_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {
            "text/html": {"schema": {"type": "string"}},
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}},
        },
    }
    for status, description in (
        (400, "The link is not valid"),
        (404, "The goal is not known"),
        (409, "The action no longer applies"),
        (410, "The link has expired"),
    )
}
_HTML_PAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A small HTML page",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}

router = APIRouter(prefix="/v1/links", tags=["signed links"])


def _service(request: Request) -> CheckinService:
    service: CheckinService = request.app.state.checkins
    return service


def _settings(request: Request) -> SessionsSettings:
    settings: SessionsSettings = request.app.state.runtime.settings
    return settings


@dataclass(frozen=True)
class _Link:
    tenant_id: str
    goal_id: str
    occurrence_id: str | None
    role: Role


def _verify(request: Request, token: str, action: str) -> _Link:
    secret = _settings(request).link_signing_secret.get_secret_value()
    try:
        claims = verify_link(secret, token, action=action)
    except LinkError as error:
        expired = "expired" in str(error)
        raise ProblemError(
            410 if expired else 400,
            f"{error}; ask for a fresh email or use the app",
            slug="link-expired" if expired else "invalid-link",
        ) from None
    tenant, goal = claims.get("tenant"), claims.get("sub")
    occurrence, role = claims.get("occ"), claims.get("role")
    if not isinstance(tenant, str) or not isinstance(goal, str) or not 0 < len(goal) <= 128:
        raise ProblemError(400, "link is not valid", slug="invalid-link")
    if occurrence is not None and (not isinstance(occurrence, str) or len(occurrence) > 128):
        raise ProblemError(400, "link is not valid", slug="invalid-link")
    return _Link(tenant, goal, occurrence, role if role in ROLES else "mentee")


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(status: int, *, heading: str, message: str, tone: str, **extra: Any) -> HTMLResponse:
    html = _templates.get_template("link.html").render(
        heading=heading, message=message, tone=tone, **extra
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _problem_page(request: Request, error: ProblemError) -> Response:
    if not _wants_html(request):
        raise error
    return _page(error.status, heading=error.title, message=error.detail, tone="problem")


def _snooze_choices(settings: SessionsSettings) -> list[tuple[int, str]]:
    default = settings.snooze_default_minutes
    values = [default, *sorted({30, 60, 180, 1440} - {default})]
    return [(value, _minutes(value)) for value in values if value <= settings.snooze_max_minutes]


def _minutes(value: int) -> str:
    if value % 1440 == 0:
        days = value // 1440
        return f"{days} day" + ("s" if days > 1 else "")
    if value % 60 == 0:
        hours = value // 60
        return f"{hours} hour" + ("s" if hours > 1 else "")
    return f"{value} minutes"


SUBSCRIBE_ACTION = "calendar-subscribe"


@router.get(
    "/calendar",
    response_class=HTMLResponse,
    summary="The 'add to calendar' page of a reminder email: the recipient's feed URL",
    description=(
        "Verifies the signed link (action `calendar-subscribe`, subject the goal, claim "
        "`email`) and shows that participant's calendar feed URL of the goal (creating the "
        "feed on first use; nothing else changes)."
    ),
    responses={**_HTML_PAGE, **_HTML_ERRORS},
)
async def calendar_page(
    request: Request, token: Annotated[str, Query(min_length=1, max_length=4096)]
) -> Response:
    secret = _settings(request).link_signing_secret.get_secret_value()
    calendars: CalendarService = request.app.state.calendars
    try:
        try:
            claims = verify_link(secret, token, action=SUBSCRIBE_ACTION)
        except LinkError as error:
            expired = "expired" in str(error)
            raise ProblemError(
                410 if expired else 400,
                f"{error}; ask for a fresh email",
                slug="link-expired" if expired else "invalid-link",
            ) from None
        tenant, goal, email = claims.get("tenant"), claims.get("sub"), claims.get("email")
        if not all(isinstance(value, str) and value for value in (tenant, goal, email)):
            raise ProblemError(400, "link is not valid", slug="invalid-link")
        feed = await calendars.participant_feed(str(tenant), str(goal), str(email))
        title = await _service(request).goal_title(str(tenant), str(goal))
    except ProblemError as error:
        return _problem_page(request, error)
    if feed.url is None:
        return _page(
            200,
            heading="Add to your calendar",
            message="This calendar was switched off; ask your coach or operator for a new one.",
            tone="problem",
            goal_title=title,
        )
    return _page(
        200,
        heading="Add to your calendar",
        message=(
            "Subscribe to this address in your calendar app (Google Calendar: Other calendars, "
            "From URL; Outlook: Add calendar, Subscribe from web; Apple Calendar: File, New "
            "Calendar Subscription). Your check-ins and coaching sessions then appear there "
            "and stay up to date. Keep the address to yourself: it is the key to this calendar."
        ),
        tone="prompt",
        goal_title=title,
        subscribe={"url": feed.url, "webcal": "webcal://" + feed.url.split("://", 1)[-1]},
    )


@router.get(
    "/{action}",
    response_class=HTMLResponse,
    summary="Confirmation page of a signed email link (changes nothing)",
    responses={**_HTML_PAGE, **_HTML_ERRORS},
)
async def confirm(
    action: LinkAction,
    request: Request,
    token: Annotated[str, Query(min_length=1, max_length=4096)],
) -> Response:
    try:
        link = _verify(request, token, action)
        title = await _service(request).goal_title(link.tenant_id, link.goal_id)
    except ProblemError as error:
        return _problem_page(request, error)
    copy = COPY[action]
    settings = _settings(request)
    form = {
        "action": f"/v1/links/{action}",
        "token": token,
        "button": copy.button,
        "minutes": _snooze_choices(settings) if action == "snooze" else None,
    }
    return _page(
        200, heading=copy.heading, message=copy.prompt, tone="prompt", goal_title=title, form=form
    )


@router.post(
    "/{action}",
    response_class=HTMLResponse,
    summary="Perform a signed email link's action (form field token)",
    responses={**_HTML_PAGE, **_HTML_ERRORS},
)
async def perform(
    action: LinkAction,
    request: Request,
    token: Annotated[str, Form(min_length=1, max_length=4096)],
    minutes: Annotated[int | None, Form(ge=1, le=10_080)] = None,
) -> Response:
    service = _service(request)
    copy = COPY[action]
    try:
        link = _verify(request, token, action)
        message = copy.done
        if action == "checkin":
            await service.record(link.tenant_id, CheckinCreate(goal_id=link.goal_id, source=SOURCE))
        elif action == "acknowledge":
            await service.acknowledge(
                link.tenant_id, link.goal_id, role=link.role, occurrence_id=link.occurrence_id
            )
        else:
            chosen = minutes or _settings(request).snooze_default_minutes
            snoozed = await service.snooze(
                link.tenant_id, link.goal_id, minutes=chosen, occurrence_id=link.occurrence_id
            )
            occurrence = snoozed.occurrence
            local = occurrence.deadline_at.astimezone(zone_of(occurrence.timezone))
            message = copy.done.format(deadline=f"{local:%Y-%m-%d %H:%M} ({occurrence.timezone})")
        title = await service.goal_title(link.tenant_id, link.goal_id)
    except ProblemError as error:
        log.info("sessions.link.refused", action=action, status=error.status, slug=error.slug)
        return _problem_page(request, error)
    log.info("sessions.link.performed", action=action, goal_id=link.goal_id, role=link.role)
    return _page(200, heading=copy.heading, message=message, tone="done", goal_title=title)
