"""The FastAPI app factory every service uses.

It wires what must be the same everywhere: the lifespan that starts and stops
the runtime, problem+json errors, request context, body limit, idempotency
keys, health, metrics, the dead-letter routes, and an OpenAPI document in
which every operation documents its error answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from shared import tracing
from shared.deadletters.api import dead_letters_router
from shared.deadletters.service import DeadLetterService
from shared.http import health
from shared.http.idempotency import IdempotencyMiddleware
from shared.http.middleware import BodyLimitMiddleware, RequestContextMiddleware
from shared.http.problems import PROBLEM_MEDIA_TYPE, Problem, install_problem_handlers
from shared.http.ratelimit import TenantRateLimiter
from shared.runtime import ServiceRuntime

COMMON_ERROR_STATUSES = (400, 401, 403, 413, 422, 500, 503)


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    version: str = "1.0.0",
    routers: Sequence[APIRouter] = (),
    tags: list[dict[str, Any]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=tags,
    )
    app.state.runtime = runtime
    app.state.verifier = runtime.verifier
    app.state.rate_limiter = TenantRateLimiter.from_settings(runtime.settings)
    install_problem_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware, service=runtime.service)
    app.include_router(health.router)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    app.state.dead_letters = DeadLetterService(runtime.database, runtime.producer)
    app.include_router(dead_letters_router(runtime.service))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if tracing.enabled:
        from shared.tracing.sdk import instrument_app

        instrument_app(app)
    return app


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, plus the problem schema on every API operation's errors."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for defs_name, defs_schema in components["Problem"].pop("$defs", {}).items():
        components.setdefault(defs_name, defs_schema)
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            # FastAPI documents validation errors as application/json; ours are problems.
            if "422" in responses:
                responses["422"] = {"description": "Validation Error", "content": problem_content}
            if not path.startswith("/v1/"):
                continue
            for status in COMMON_ERROR_STATUSES:
                responses.setdefault(
                    str(status), {"description": "Error", "content": problem_content}
                )
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
