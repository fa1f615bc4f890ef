"""What every console page shares: the app's parts, sign-in and CSRF checks, rendering.

Routes declare ``session: SignedIn`` (a page) or ``session: Protected`` (a
form post: signed in and carrying this session's CSRF token); both raise
instead of returning when the check fails, and the error handlers
(``services/console/errors.py``) turn that into a redirect to the sign-in
page or a 403 page.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode, urlsplit

import structlog
from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from services.console.settings import ConsoleSettings
from services.console.signin import SESSION_COOKIE, Revocations, Sealer, Session
from services.console.upstream import Upstream, UpstreamError
from shared.auth.tokens import AuthError, TokenVerifier

TEMPLATES = Path(__file__).parent / "templates"
T = TypeVar("T")

NOTICES = {
    "signed-out": "You are signed out; the console has forgotten your credential.",
    "enabled": "The endpoint is enabled again. Use recover to resend what it missed.",
    "disabled": "The endpoint is disabled; what it still owed is cancelled.",
    "test-sent": "A webhook.test event is on its way to the endpoint.",
    "replayed": "The message is queued again, with the same webhook-id.",
    "replay-none": "No enabled endpoint matches this message now; nothing was queued.",
    "recovered": "Every failed delivery since then is queued again.",
    "redriven": "The dead letter is back on its source topic.",
    "retention-saved": "The retention windows are saved; the purger applies them on its next pass.",
}


class SignInRequired(Exception):
    """No valid session: the page asks the browser to sign in (again)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "sign in required")
        self.reason = reason


class CsrfRefused(Exception):
    """A form post without this session's CSRF token, or from another origin."""


class PageError(Exception):
    """Something the console itself refuses, shown as an error page with ``status``."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        field_errors: list[dict[str, str]] | None = None,
        back: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.field_errors = field_errors or []
        self.back = back


@dataclass
class Console:
    """The composition root's parts, kept on ``app.state.console``."""

    settings: ConsoleSettings
    upstream: Upstream
    verifier: TokenVerifier
    sealer: Sealer
    revocations: Revocations
    templates: Jinja2Templates


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(console_of)]


async def signed_in(request: Request, console: ConsoleDep) -> Session:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise SignInRequired()
    value = console.sealer.open("session", cookie)
    session = Session.from_cookie(value) if value is not None else None
    if session is None or console.revocations.revoked(session.id):
        raise SignInRequired("expired")
    try:
        principal = console.verifier.verify(session.credential)
    except AuthError:
        raise SignInRequired("expired") from None
    if principal.tenant_id != session.tenant_id:
        raise SignInRequired("expired")
    structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    request.state.session = session
    return session


SignedIn = Annotated[Session, Depends(signed_in)]


def same_origin(request: Request) -> bool:
    """A form post names our own host as its origin (or, like some clients, names none)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def csrf_checked(request: Request, session: SignedIn) -> Session:
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not session.csrf_matches(token) or not same_origin(request):
        raise CsrfRefused()
    return session


Protected = Annotated[Session, Depends(csrf_checked)]


def link(path: str, **params: str | int | None) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None and v != ""})
    return f"{path}?{query}" if query else path


def local_path(value: str | None, default: str = "/") -> str:
    """A path on this site only (no scheme, no host, no ``//``): safe to redirect to."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def render(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    console = console_of(request)
    session: Session | None = getattr(request.state, "session", None)
    values: dict[str, Any] = {
        "session": session,
        "csrf_token": session.csrf if session else None,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        "form_id": secrets.token_urlsafe(16),
        "active": request.url.path.split("/")[1] or "overview",
        "link": link,
        **context,
    }
    response: HTMLResponse = console.templates.TemplateResponse(
        request, template, values, status_code=http_status
    )
    return response


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def millis(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    environment = templates.env
    environment.filters.update(when=when, percent=percent, millis=millis)
    environment.trim_blocks = True
    environment.lstrip_blocks = True
    return templates


@dataclass(frozen=True)
class Panel(Generic[T]):
    """One section of a page that draws on one service: its data, or why it has none."""

    value: T | None
    error: UpstreamError | None = None


async def panel(call: Awaitable[T]) -> Panel[T]:
    """Run one section's call; a service that fails spoils only its own section.

    A credential the service refuses still ends the whole session (it would fail
    everywhere).
    """
    try:
        return Panel(await call)
    except UpstreamError as error:
        if error.kind == "unauthenticated":
            raise
        return Panel(None, error)
