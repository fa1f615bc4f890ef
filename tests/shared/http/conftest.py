"""A small service built with the real app factory, runtime and middleware, for HTTP tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError

from shared.context import current
from shared.db.tables import new_metadata
from shared.devstack.broker import TansuBroker
from shared.http.app import create_service_app
from shared.http.problems import ProblemError, problem_responses
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from tests.support.apps import make_settings

MAX_REQUEST_BYTES = 2048


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=50)
    size: int = Field(ge=1)


class Echo(BaseModel):
    request_id: str | None
    correlation_id: str | None
    title: str | None = None


router = APIRouter(prefix="/v1")


@router.post("/things", status_code=201, response_model=Echo, responses=problem_responses(409))
async def create_thing(thing: Thing) -> Echo:
    if thing.title == "taken":
        raise ProblemError(409, "a thing with this title exists", slug="conflict")
    return Echo(
        request_id=current("request_id"),
        correlation_id=current("correlation_id"),
        title=thing.title,
    )


@router.get("/crash")
async def crash() -> Echo:
    secret_local = "s3cr3t-in-a-frame"  # noqa: F841 - must never reach the client
    raise RuntimeError("a bug with a secret: s3cr3t")


@router.get("/database-away")
async def database_away() -> Echo:
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


@router.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    return {"received": len(await request.body())}


@pytest.fixture
def http_settings(
    broker: TansuBroker, topic_prefix: str, keys_file: Path, tmp_path: Path
) -> Callable[..., ServiceSettings]:
    def build(**overrides: Any) -> ServiceSettings:
        overrides.setdefault("kafka_bootstrap_servers", broker.bootstrap_servers)
        return make_settings(
            ServiceSettings,
            data_dir=tmp_path / "data",
            bootstrap=overrides.pop("kafka_bootstrap_servers"),
            topic_prefix=topic_prefix,
            keys_file=keys_file,
            max_request_bytes=MAX_REQUEST_BYTES,
            **overrides,
        )

    return build


@pytest.fixture
def build_app(
    http_settings: Callable[..., ServiceSettings], tmp_path: Path
) -> Callable[..., FastAPI]:
    def build(**overrides: Any) -> FastAPI:
        settings = http_settings(**overrides)
        revisions = tmp_path / "versions"
        revisions.mkdir(exist_ok=True)
        runtime = ServiceRuntime(
            settings, service="httptest", metadata=new_metadata(), migrations=revisions
        )
        return create_service_app(
            runtime, title="HTTP test service", description="Only for tests.", routers=[router]
        )

    return build
