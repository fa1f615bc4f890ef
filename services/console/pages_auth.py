"""Signing in by pasting a tenant credential, and signing out.

The credential is checked here, locally, with the same verifier the services
use (signature, issuer, audience, expiry); nothing is sent anywhere to sign
in. The sign-in form has its own CSRF protection before any session exists:
a random value in a short-lived HttpOnly cookie, whose MAC the form carries.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Annotated

import jwt
from fastapi import APIRouter, Form, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.console.signin import (
    MAX_CREDENTIAL_LENGTH,
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    Session,
)
from services.console.web import ConsoleDep, Protected, local_path, render, same_origin
from shared.auth.tokens import AuthError
from shared.logs import get_logger

log = get_logger(__name__)
router = APIRouter()
PRE_SESSION_SECONDS = 1800

REASONS = {
    "expired": "Your session has ended (or its credential expired); sign in again.",
    "refused": "A service no longer accepts your credential; sign in with a current one.",
}


def _sign_in_page(
    request: Request,
    console: ConsoleDep,
    *,
    next_path: str,
    error: str | None = None,
    status: int = 200,
    reason: str | None = None,
) -> HTMLResponse:
    nonce = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        status,
        next_path=next_path,
        error=error,
        reason=REASONS.get(reason or ""),
        signin_token=console.sealer.mac(f"signin:{nonce}"),
    )
    response.set_cookie(
        PRE_SESSION_COOKIE,
        nonce,
        max_age=PRE_SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=console.settings.cookie_secure,
        path="/sign-in",
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
async def sign_in_form(
    request: Request,
    console: ConsoleDep,
    next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    reason: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    return _sign_in_page(request, console, next_path=local_path(next_path), reason=reason)


@router.post("/sign-in", response_model=None, include_in_schema=False)
async def sign_in(
    request: Request,
    console: ConsoleDep,
    credential: Annotated[str, Form(max_length=MAX_CREDENTIAL_LENGTH * 2)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    target = local_path(next_path)
    nonce = request.cookies.get(PRE_SESSION_COOKIE, "")
    expected = console.sealer.mac(f"signin:{nonce}")
    if not nonce or not hmac.compare_digest(expected, csrf_token) or not same_origin(request):
        log.warning("console.csrf.refused", path="/sign-in")
        return _sign_in_page(
            request,
            console,
            next_path=target,
            status=403,
            error="The form was stale or came from another site; it is renewed, try again.",
        )
    token = credential.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token or len(token) > MAX_CREDENTIAL_LENGTH:
        return _sign_in_page(
            request,
            console,
            next_path=target,
            status=422,
            error="Paste a tenant credential (e.g. the output of make token TENANT=acme).",
        )
    try:
        principal = console.verifier.verify(token)
        claims_expiry = _expiry(console, token)
    except AuthError as refused:
        log.info("console.sign_in.refused", reason=refused.detail)
        return _sign_in_page(
            request,
            console,
            next_path=target,
            status=401,
            error=f"That credential was refused: {refused.detail}.",
        )
    session = Session.new(
        token, principal.tenant_id, console.settings.session_hours * 3600, claims_expiry
    )
    response = RedirectResponse(target, 303)
    response.set_cookie(
        SESSION_COOKIE,
        console.sealer.seal("session", session.to_cookie()),
        max_age=max(1, int(session.expires_at - time.time())),
        httponly=True,
        samesite="strict",
        secure=console.settings.cookie_secure,
        path="/",
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path="/sign-in")
    log.info("console.signed_in", tenant_id=principal.tenant_id, scopes=sorted(principal.scopes))
    return response


def _expiry(console: ConsoleDep, token: str) -> float:
    """When the (already verified) credential expires, so the session never outlives it."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims.get("exp", time.time() + console.settings.session_hours * 3600))


@router.post("/sign-out", response_model=None, include_in_schema=False)
async def sign_out(console: ConsoleDep, session: Protected) -> Response:
    console.revocations.revoke(session)
    response = RedirectResponse("/sign-in?notice=signed-out", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    log.info("console.signed_out", tenant_id=session.tenant_id)
    return response
