"""Building a verifier (services) or an issuer (the token command) from settings."""

from __future__ import annotations

import json
from typing import Any

from shared.auth.keys import load_jwks, load_or_create_jwks, public_jwks
from shared.auth.tokens import TokenIssuer, TokenVerifier
from shared.settings import ServiceSettings


def _key_set(settings: ServiceSettings) -> dict[str, Any]:
    if settings.auth_jwks is not None:
        data: dict[str, Any] = json.loads(settings.auth_jwks.get_secret_value())
        return data
    path = settings.resolved_keys_file()
    if settings.environment == "production":
        return load_jwks(path)
    return load_or_create_jwks(path)


def build_verifier(settings: ServiceSettings) -> TokenVerifier:
    return TokenVerifier(
        public_jwks(_key_set(settings)),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway_seconds=settings.auth_leeway_seconds,
    )


def build_issuer(settings: ServiceSettings) -> TokenIssuer:
    """The newest private key in the set signs; older ones stay for verification only."""
    keys = [key for key in _key_set(settings)["keys"] if "d" in key]
    if not keys:
        raise ValueError("the key set holds no private key to sign with")
    return TokenIssuer(keys[-1], issuer=settings.auth_issuer, audience=settings.auth_audience)
