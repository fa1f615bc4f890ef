"""Error pages that say what went wrong, never a stack trace.

A browser gets an HTML page (status, what happened, what to do); a client
that asks for JSON gets the same as RFC 9457 problem+json. A service that is
down is a 503 page naming it, a credential a service no longer accepts ends
the session, and anything unexpected is logged with its trace and answered
with the request id only.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.signin import SESSION_COOKIE
from services.console.upstream import UpstreamError
from services.console.web import CsrfRefused, PageError, SignInRequired, link, render
from shared.context import current
from shared.http.problems import problem_response, unexpected_error_response, validation_errors
from shared.logs import get_logger

log = get_logger(__name__)

UPSTREAM_STATUS = {
    "unavailable": 503,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "invalid": 422,
    "rate_limited": 429,
    "failed": 502,
}
UPSTREAM_TITLE = {
    "unavailable": "{service} is not answering",
    "forbidden": "Your credential may not do this",
    "not_found": "Not found",
    "conflict": "Not possible right now",
    "invalid": "{service} refused the request",
    "rate_limited": "Too many requests",
    "failed": "{service} failed",
}
UPSTREAM_HINT = {
    "unavailable": "The console is fine, but it cannot reach that service. Check that it is "
    "running (make run starts it), then reload this page.",
    "forbidden": "Sign in with a credential that holds the scope named above.",
    "not_found": "It may belong to another tenant, or it was deleted.",
    "conflict": "Reload the page to see the current state.",
    "invalid": "Go back, correct the fields named above and send it again.",
    "rate_limited": "Wait a moment, then try again.",
    "failed": "The service logged the details under the request id shown below.",
}


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    if "application/problem+json" in accept:
        return False
    return not ("application/json" in accept and "text/html" not in accept)


def error_page(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    hint: str | None = None,
    field_errors: list[dict[str, str]] | None = None,
    upstream_request_id: str | None = None,
    headers: dict[str, str] | None = None,
    back: str | None = None,
    slug: str = "console-error",
) -> Response:
    if not wants_html(request):
        extra: dict[str, Any] = {"errors": field_errors} if field_errors else {}
        return problem_response(
            status,
            title=title,
            detail=detail,
            slug=slug,
            instance=request.url.path,
            headers=headers,
            **extra,
        )
    response = render(
        request,
        "error.html",
        status,
        status_code=status,
        title=title,
        detail=detail,
        hint=hint,
        field_errors=field_errors or [],
        request_id=current("request_id"),
        upstream_request_id=upstream_request_id,
        back=back,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def on_sign_in_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    if not wants_html(request):
        return problem_response(401, detail="sign in to the console first", slug="unauthenticated")
    target = request.url.path if request.method == "GET" else None
    if target and request.url.query:
        target = f"{target}?{request.url.query}"
    response = RedirectResponse(link("/sign-in", next=target, reason=error.reason), 303)
    if error.reason:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def on_csrf_refused(request: Request, error: Exception) -> Response:
    log.warning("console.csrf.refused", path=request.url.path)
    return error_page(
        request,
        403,
        "The form was not accepted",
        "Its security token is missing, stale or from another site, so the console did nothing.",
        hint="Go back, reload the page and submit the form again.",
        slug="csrf-refused",
    )


async def on_upstream(request: Request, error: Exception) -> Response:
    assert isinstance(error, UpstreamError)
    if error.kind == "unauthenticated":
        log.info("console.session.refused_upstream", service=error.service)
        response = RedirectResponse(link("/sign-in", reason="refused"), 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    headers = {"Retry-After": error.retry_after} if error.retry_after else None
    return error_page(
        request,
        UPSTREAM_STATUS[error.kind],
        UPSTREAM_TITLE[error.kind].format(service=error.service.capitalize()),
        error.detail,
        hint=UPSTREAM_HINT[error.kind],
        field_errors=error.field_errors,
        upstream_request_id=error.request_id,
        headers=headers,
        slug=f"upstream-{error.kind.replace('_', '-')}",
    )


async def on_page_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageError)
    return error_page(
        request,
        error.status,
        error.title,
        error.detail,
        field_errors=error.field_errors,
        back=error.back,
    )


async def on_validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = validation_errors(error)
    return error_page(
        request,
        400,
        "The request has invalid values",
        "; ".join(f"{item['field']}: {item['message']}" for item in errors[:5]),
        hint="Correct the fields named above (a link that was edited by hand, perhaps).",
        field_errors=errors,
        slug="validation-error",
    )


async def on_http(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return error_page(
            request,
            404,
            "No such page",
            f"The console has no page at {request.url.path}.",
            hint="Use the navigation above.",
            slug="not-found",
        )
    return error_page(
        request, error.status_code, "Request refused", str(error.detail), slug="http-error"
    )


def unexpected_page(request: Request, error: BaseException) -> Response:
    if not wants_html(request):
        return unexpected_error_response(request.url.path, error)
    log.error(
        "http.unhandled",
        path=request.url.path,
        error_type=type(error).__name__,
        exc_info=(type(error), error, error.__traceback__),
    )
    return error_page(
        request,
        500,
        "Something went wrong in the console",
        "An unexpected error occurred; it is logged under the request id below.",
        slug="internal-error",
    )


class UnexpectedErrorPages:
    """Answers an exception no handler took with the 500 page (a problem to JSON clients).

    Inside the shared request-context middleware, so the page carries the request id
    and the access log still sees the 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            if started:
                raise
            await unexpected_page(Request(scope), error)(scope, receive, send)


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(CsrfRefused, on_csrf_refused)
    app.add_exception_handler(UpstreamError, on_upstream)
    app.add_exception_handler(PageError, on_page_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
