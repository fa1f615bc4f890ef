"""Tenant credentials: signed JWTs verified locally by every service."""

from shared.auth.tokens import (
    ALL_SCOPES,
    AuthError,
    Principal,
    TokenIssuer,
    TokenVerifier,
)

__all__ = ["ALL_SCOPES", "AuthError", "Principal", "TokenIssuer", "TokenVerifier"]
