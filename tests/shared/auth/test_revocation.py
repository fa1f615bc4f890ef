"""Revocation: a credential.revoked event on the control topic makes a service refuse it, and a
restarted service still refuses it from its own table even when the topic no longer has it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from services.goals.app import create_app
from services.goals.settings import GoalsSettings
from shared.auth.keys import generate_key, public_jwks
from shared.auth.tokens import AuthError, TokenIssuer, TokenVerifier
from shared.devstack.broker import TansuBroker
from shared.events import build_event
from shared.events.catalog.control import CredentialRevoked, CredentialRevokedData
from tests.support.apps import make_settings, serving
from tests.support.kafka import produce
from tests.support.waiting import eventually


def test_the_verifier_refuses_a_revoked_credential_it_has_cached() -> None:
    key = generate_key("k1")
    verifier = TokenVerifier(public_jwks({"keys": [key]}), issuer="i", audience="a")
    token = TokenIssuer(key, issuer="i", audience="a").mint("acme")
    principal = verifier.verify(token)  # now cached
    verifier.set_revoked({principal.token_id})
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    assert (caught.value.status, caught.value.detail) == (401, "credential has been revoked")


def revocation(credential: str) -> bytes:
    claims = jwt.decode(credential, options={"verify_signature": False})
    return build_event(
        CredentialRevoked,
        CredentialRevokedData(token_id=claims["jti"], reason="test"),
        tenant_id=claims["tenant"],
        partition_key=claims["jti"],
        source="/followthrough/tests",
    ).to_json()


async def test_a_revocation_holds_across_a_restart_without_the_topic(
    settings_for: Callable[..., Any],
    broker: TansuBroker,
    token: Callable[..., str],
    keys_file: Path,
    tmp_path: Path,
) -> None:
    settings: GoalsSettings = settings_for(GoalsSettings)
    revoked, kept = token("acme"), token("acme")

    def bearer(credential: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential}"}

    async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/v1/goals", headers=bearer(revoked))).status_code == 200
        # An unreadable record on the control topic is skipped; what follows still counts.
        await produce(
            broker.bootstrap_servers,
            settings.topic("control"),
            [b"not an event", revocation(revoked)],
        )

        async def refused() -> bool:
            return (await http.get("/v1/goals", headers=bearer(revoked))).status_code == 401

        await eventually(refused, timeout=15, what="the revoked credential refused")
        assert (await http.get("/v1/goals", headers=bearer(kept))).status_code == 200

    # Same database, a deployment whose control topic is empty: the table alone decides,
    # from the very first request.
    fresh: GoalsSettings = make_settings(
        GoalsSettings,
        data_dir=tmp_path / "data",
        bootstrap=broker.bootstrap_servers,
        topic_prefix=f"{settings.kafka_topic_prefix}again.",
        keys_file=keys_file,
        database_url=settings.database_url,
    )
    async with serving(create_app(fresh)) as url, httpx.AsyncClient(base_url=url) as http:
        first = await http.get("/v1/goals", headers=bearer(revoked))
        assert first.status_code == 401
        assert first.json()["detail"] == "credential has been revoked"
        assert (await http.get("/v1/goals", headers=bearer(kept))).status_code == 200
