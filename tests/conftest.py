"""Fixtures shared by every test: the real broker, signing keys and credentials."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.auth.keys import generate_key, write_jwks
from shared.auth.tokens import ALL_SCOPES, TokenIssuer
from shared.devstack.broker import TansuBroker

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
    def mint(tenant: str = "acme", scopes: tuple[str, ...] = ALL_SCOPES) -> str:
        return issuer.mint(tenant, scopes=scopes)

    return mint


@pytest.fixture(scope="session")
def auth_headers(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    def headers(tenant: str = "acme", scopes: tuple[str, ...] = ALL_SCOPES) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(tenant, scopes)}"}

    return headers
