"""RFC 9457 problem details for every error a service answers.

Every error, whether raised by our code, by request validation, by the
framework (404, 405) or by an unexpected bug, leaves as
``application/problem+json`` with a stable ``type``, a human ``title`` and
``detail``, and the request id so an operator can find the log line. Stack
traces go to the log, never to the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shared.auth.tokens import AuthError
from shared.context import current
from shared.db.database import DatabaseUnavailableError, is_unavailable
from shared.logs import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://followthrough.dev/problems/"
log = get_logger(__name__)


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. body.policy.timezone.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", examples=[f"{PROBLEM_BASE}validation-error"])
    title: str = Field(examples=["Request validation failed"])
    status: int = Field(ge=400, le=599, examples=[422])
    detail: str | None = Field(default=None, examples=["body.title: Field required"])
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from anywhere in request handling to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_response(
    status: int,
    *,
    detail: str | None = None,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    **extensions: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}{slug}" if slug else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    request_id = current("request_id")
    if request_id:
        body["request_id"] = request_id
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extensions)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _field_path(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(error: RequestValidationError) -> list[dict[str, str]]:
    return [
        {"field": _field_path(item.get("loc", ())), "message": str(item.get("msg", "invalid"))}
        for item in error.errors()
    ]


async def _on_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, ProblemError)
    return problem_response(
        error.status,
        detail=error.detail,
        slug=error.slug,
        title=error.title,
        instance=request.url.path,
        headers=error.headers,
        **error.extensions,
    )


async def _on_validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = validation_errors(error)
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors[:5])
    return problem_response(
        422,
        detail=detail,
        slug="validation-error",
        title="Request validation failed",
        instance=request.url.path,
        errors=errors,
    )


def _unreadable_body(error: StarletteHTTPException) -> str | None:
    """Why FastAPI could not parse a JSON body, when its generic 400 hides it.

    A JSON decode error is already a validation error; invalid UTF-8 and nesting
    deeper than the parser's recursion limit arrive as a bare 400 "error parsing
    the body", which would name no field.
    """
    cause = error.__cause__
    if error.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return "body is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "body nests JSON too deeply"
    if isinstance(cause, ValueError):
        return "body is not valid JSON"
    return None


async def _on_http(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    unreadable = _unreadable_body(error)
    if unreadable is not None:
        return problem_response(
            422,
            detail=f"body: {unreadable}",
            slug="validation-error",
            title="Request validation failed",
            instance=request.url.path,
            errors=[{"field": "body", "message": unreadable}],
        )
    return problem_response(
        error.status_code,
        detail=str(error.detail) if error.detail else None,
        instance=request.url.path,
        headers=error.headers,
    )


async def _on_auth(request: Request, error: Exception) -> Response:
    assert isinstance(error, AuthError)
    headers = {"WWW-Authenticate": 'Bearer realm="followthrough"'} if error.status == 401 else {}
    slug = "unauthenticated" if error.status == 401 else "forbidden"
    return problem_response(
        error.status, detail=error.detail, slug=slug, instance=request.url.path, headers=headers
    )


def unexpected_error_response(path: str, error: BaseException) -> Response:
    """The answer to an exception nothing else handled: 503 when the database is away, else 500."""
    if is_unavailable(error):
        log.warning("http.database.unavailable", path=path, error=repr(error))
        return problem_response(
            503,
            detail="The database is unavailable; retry shortly.",
            slug="unavailable",
            instance=path,
            headers={"Retry-After": "2"},
        )
    log.error(
        "http.unhandled",
        path=path,
        error_type=type(error).__name__,
        exc_info=(type(error), error, error.__traceback__),
    )
    return problem_response(
        500,
        detail="An unexpected error occurred; the request id identifies it in the logs.",
        slug="internal-error",
        instance=path,
    )


async def _on_unexpected(request: Request, error: Exception) -> Response:
    return unexpected_error_response(request.url.path, error)


_UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError, DatabaseUnavailableError)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(AuthError, _on_auth)
    for unavailable in (
        OperationalError,
        InterfaceError,
        PoolTimeoutError,
        DatabaseUnavailableError,
    ):
        app.add_exception_handler(unavailable, _on_unexpected)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting that these statuses answer with a problem document."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
