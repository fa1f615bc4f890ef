"""Fixtures shared by every test: the real broker, signing keys and credentials."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.auth.keys import generate_key, write_jwks
from shared.auth.tokens import TENANT_SCOPES, TokenIssuer
from shared.devstack.broker import TansuBroker
from shared.settings import ServiceSettings
from tests.support import postgres

ISSUER = "followthrough"
AUDIENCE = "followthrough-api"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One real Tansu broker for the session; tests keep apart by topic prefix."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    tansu = TansuBroker(log_file=log)
    tansu.start()
    try:
        yield tansu
    finally:
        tansu.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="session")
def private_jwk() -> dict[str, str]:
    return generate_key("test-key-1")


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory, private_jwk: dict[str, str]) -> Path:
    path = tmp_path_factory.mktemp("keys") / "jwks.json"
    write_jwks(path, {"keys": [private_jwk]})
    return path


@pytest.fixture(scope="session")
def issuer(private_jwk: dict[str, str]) -> TokenIssuer:
    return TokenIssuer(private_jwk, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture(scope="session")
def token(issuer: TokenIssuer) -> Callable[..., str]:
    def mint(tenant: str = "acme", scopes: tuple[str, ...] = TENANT_SCOPES) -> str:
        return issuer.mint(tenant, scopes=scopes)

    return mint


@pytest.fixture(scope="session")
def auth_headers(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    def headers(tenant: str = "acme", scopes: tuple[str, ...] = TENANT_SCOPES) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(tenant, scopes)}"}

    return headers


@pytest.fixture(scope="session")
def postgres_reachable() -> bool:
    return postgres.reachable()


def pytest_report_header(config: pytest.Config) -> str:
    if postgres.reachable():
        return (
            f"PostgreSQL: reachable ({postgres.ADMIN_DSN}); "
            "database tests run on SQLite and PostgreSQL"
        )
    return (
        f"PostgreSQL: NOT reachable at {postgres.ADMIN_DSN}; "
        "the PostgreSQL variants of database tests are SKIPPED"
    )


@pytest.fixture(params=["sqlite", "postgres"])
def db_backend(request: pytest.FixtureRequest, postgres_reachable: bool) -> str:
    """Database-backed tests run once per backend; PostgreSQL is skipped (loudly) when absent."""
    backend: str = request.param
    if backend == "postgres" and not postgres_reachable:
        pytest.skip(f"PostgreSQL not reachable at {postgres.ADMIN_DSN}")
    return backend


@pytest.fixture
def database_url_for(db_backend: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A fresh database per name for this test, on this test's backend."""
    created: list[str] = []

    def url(name: str) -> str:
        if db_backend == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / 'data' / name}.db"
        database, dsn = postgres.create_database(name)
        created.append(database)
        return dsn

    try:
        yield url
    finally:
        for database in created:
            postgres.drop_database(database)


@pytest.fixture
def settings_for(
    broker: TansuBroker,
    topic_prefix: str,
    keys_file: Path,
    tmp_path: Path,
    database_url_for: Callable[[str], str],
) -> Callable[..., Any]:
    """Build a service's settings for this test: own database, data dir, topic prefix, keys."""
    from tests.support.apps import make_settings

    def build(cls: type[ServiceSettings], **overrides: Any) -> ServiceSettings:
        overrides.setdefault("database_url", database_url_for(cls.service_name))
        return make_settings(
            cls,
            data_dir=tmp_path / "data",
            bootstrap=broker.bootstrap_servers,
            topic_prefix=topic_prefix,
            keys_file=keys_file,
            **overrides,
        )

    return build
