"""The bearer-credential dependency every protected route uses.

Routes declare the scopes they need with ``Depends(require("goals:write"))``
(services alias it with ``Annotated``); the tenant of the verified credential
is bound to the log context for the rest of the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth.tokens import AuthError, Principal, TokenVerifier

bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A tenant credential, e.g. from `make token TENANT=acme`.",
)


def verifier_of(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


def require(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks it holds ``scopes``."""

    async def authenticate(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        if credentials is None:
            raise AuthError(401, "missing bearer credential in the Authorization header")
        principal = verifier_of(request).verify(credentials.credentials)
        principal.require(scopes)
        structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
        return principal

    return authenticate
