"""The app factory over real HTTP: every error is problem+json, ids are echoed and bound."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from shared.devstack.processes import free_port
from shared.http.middleware import BodyLimitMiddleware
from tests.shared.http.conftest import MAX_REQUEST_BYTES
from tests.support.apps import serving
from tests.support.receiver import serve_asgi

PROBLEM = "application/problem+json"


@pytest.fixture
async def http(build_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(build_app()) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_request_validation_names_every_field(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/things", json={"title": "", "size": 0, "colour": "red"})
    body = problem(response, 422)
    assert body["type"].endswith("/validation-error")
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"body.title", "body.size", "body.colour"}
    assert "body.title" in body["detail"]


async def test_a_body_that_is_not_json_is_a_validation_problem(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    body = problem(response, 422)
    assert body["errors"]


async def test_a_problem_error_keeps_its_status_and_type(http: httpx.AsyncClient) -> None:
    body = problem(await http.post("/v1/things", json={"title": "taken", "size": 1}), 409)
    assert body["type"].endswith("/conflict")
    assert body["detail"] == "a thing with this title exists"
    assert body["instance"] == "/v1/things"


async def test_unknown_route_and_wrong_method_are_problems(http: httpx.AsyncClient) -> None:
    problem(await http.get("/v1/nothing-here"), 404)
    response = await http.delete("/v1/things")
    problem(response, 405)
    assert response.headers["allow"] == "POST"


async def test_a_crash_is_a_500_without_a_stack_trace_and_is_logged(
    http: httpx.AsyncClient,
) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await http.get("/v1/crash", headers={"X-Request-ID": "req-crash"})
    body = problem(response, 500)
    text = response.text
    for leak in ("Traceback", "RuntimeError", "s3cr3t", "crash()", ".py"):
        assert leak not in text
    assert body["request_id"] == "req-crash"
    (logged,) = [line for line in logs if line["event"] == "http.unhandled"]
    assert logged["log_level"] == "error"
    assert logged["error_type"] == "RuntimeError"
    error = logged["exc_info"][1]
    assert isinstance(error, RuntimeError)


async def test_an_unavailable_database_is_a_503_with_retry_after(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/database-away")
    body = problem(response, 503)
    assert response.headers["retry-after"]
    assert "connection refused" not in response.text
    assert body["type"].endswith("/unavailable")


async def test_a_declared_body_over_the_limit_is_refused_with_413(
    http: httpx.AsyncClient,
) -> None:
    big = json.dumps({"title": "x", "size": 1, "pad": "y" * MAX_REQUEST_BYTES}).encode()
    body = problem(
        await http.post("/v1/things", content=big, headers={"content-type": "application/json"}),
        413,
    )
    assert str(MAX_REQUEST_BYTES) in body["detail"]


@pytest.mark.parametrize("path", ["/v1/things", "/v1/raw"])
async def test_a_chunked_body_over_the_limit_is_refused_with_413(
    http: httpx.AsyncClient, path: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "x", "size": 1, "pad": "'
        for _ in range(8):
            yield b"y" * 512
        yield b'"}'

    response = await http.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers  # it really was streamed
    problem(response, 413)


async def test_a_chunked_body_over_the_limit_with_an_idempotency_key_is_413(
    http: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 512

    response = await http.post(
        "/v1/raw",
        content=chunks(),
        headers={**auth_headers(), "Idempotency-Key": f"k-{uuid.uuid4()}"},
    )
    problem(response, 413)


async def test_a_body_under_the_limit_passes(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"z" * (MAX_REQUEST_BYTES - 10)

    response = await http.post("/v1/raw", content=chunks())
    assert response.status_code == 200
    assert response.json() == {"received": MAX_REQUEST_BYTES - 10}


async def test_request_and_correlation_ids_are_echoed_and_bound(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/things",
        json={"title": "a", "size": 1},
        headers={"X-Request-ID": "req-42", "X-Correlation-ID": "corr-42"},
    )
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["x-correlation-id"] == "corr-42"
    assert response.json() == {"request_id": "req-42", "correlation_id": "corr-42", "title": "a"}


async def test_without_ids_a_request_id_is_made_and_becomes_the_correlation_id(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/v1/things", json={"title": "a", "size": 1}, headers={"X-Request-ID": "bad id\twith space"}
    )
    request_id = response.headers["x-request-id"]
    assert request_id != "bad id\twith space"
    assert uuid.UUID(request_id)
    assert response.json()["request_id"] == request_id
    assert response.json()["correlation_id"] == request_id
    assert response.headers["x-correlation-id"] == request_id


async def test_health_readiness_and_metrics(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": "httptest"}

    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"database": True, "broker": True}}

    await http.get("/v1/nothing-here")
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        'followthrough_http_requests_total{method="GET",route="unmatched",'
        'service="httptest",status="404"}' in metrics.text
    )
    assert "# TYPE followthrough_consumer_lag gauge" in metrics.text


async def test_readyz_is_503_with_retry_after_while_the_broker_is_unreachable(
    build_app: Callable[..., FastAPI],
) -> None:
    app = build_app(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_create_topics=False)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
        response = await http.get("/readyz")
    body = problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert body["checks"] == {"database": True, "broker": False}
    assert "broker" in body["detail"]


async def test_openapi_documents_errors_as_problems(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/v1/things"]["post"]
    for status in ("409", "413", "422", "500"):
        content = operation["responses"][status]["content"]
        assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_the_body_limit_answers_413_even_to_a_plain_asgi_reader() -> None:
    """A middleware that reads the body itself (outside FastAPI's handlers) still gets a 413."""

    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 512

    app = BodyLimitMiddleware(reads_everything, max_bytes=MAX_REQUEST_BYTES)
    async with serve_asgi(app) as port, httpx.AsyncClient(timeout=10) as client:
        url = f"http://127.0.0.1:{port}/"
        small = await client.post(url, content=b"x" * 10)
        large = await client.post(url, content=chunks())
    assert small.status_code == 204
    assert large.status_code == 413
    assert large.headers["content-type"] == PROBLEM
