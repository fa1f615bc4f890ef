"""Minting and verifying tenant credentials.

A credential is a JWT (EdDSA) with the tenant in ``tenant``, the granted
scopes in ``scope`` (space separated, as OAuth 2 has it), an expiry and a
``jti``. Verification is local to each service: signature by ``kid``, issuer,
audience, expiry, then scope; no service ever calls another to check a token.

Keys rotate without downtime: a verifier holds every key of the set by
``kid``; add the new key to the set everywhere, start minting with it (the
issuer signs with the newest), and drop the old key once the tokens it
signed have expired.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

CACHE_SIZE = 4096
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

TENANT_SCOPES: tuple[str, ...] = (
    "goals:read",
    "goals:write",
    "sessions:read",
    "sessions:write",
    "notifications:read",
    "notifications:write",
)
"""What a tenant's credential holds by default."""

TENANT_ADMIN_SCOPE = "tenant:admin"
"""A tenant's own administration: erasing a person, exporting their data, retention settings.

Never granted by default: mint it explicitly (``make token TENANT=acme SCOPES="tenant:admin"``).
"""

OPERATOR_SCOPE = "operator"
"""Widens what the operator APIs show to every tenant (dead letters), never granted by default."""

ALL_SCOPES: tuple[str, ...] = (*TENANT_SCOPES, TENANT_ADMIN_SCOPE, OPERATOR_SCOPE)


class AuthError(Exception):
    """A credential was refused; ``status`` is 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    scopes: frozenset[str]
    subject: str
    token_id: str

    def require(self, scopes: Iterable[str]) -> None:
        missing = [scope for scope in scopes if scope not in self.scopes]
        if missing:
            raise AuthError(403, f"credential lacks scope: {' '.join(missing)}")


class TokenIssuer:
    def __init__(self, private_jwk: dict[str, Any], *, issuer: str, audience: str) -> None:
        self._key = jwt.PyJWK.from_dict(private_jwk)
        self._kid = private_jwk["kid"]
        self._issuer = issuer
        self._audience = audience

    def mint(
        self,
        tenant_id: str,
        *,
        scopes: Iterable[str] = TENANT_SCOPES,
        ttl: timedelta = timedelta(days=30),
        subject: str | None = None,
        now: datetime | None = None,
    ) -> str:
        if not TENANT_PATTERN.match(tenant_id):
            raise ValueError("tenant must be 1-64 of a-z, 0-9, '_' or '-', starting alphanumeric")
        granted = sorted(set(scopes))
        unknown = [scope for scope in granted if scope not in ALL_SCOPES]
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        issued = now or datetime.now(UTC)
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject or f"tenant:{tenant_id}",
            "tenant": tenant_id,
            "scope": " ".join(granted),
            "iat": int(issued.timestamp()),
            "exp": int((issued + ttl).timestamp()),
            "jti": secrets.token_hex(12),
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid})


class TokenVerifier:
    def __init__(
        self,
        jwks: dict[str, Any],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 30,
        revoked: frozenset[str] = frozenset(),
    ) -> None:
        self._keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys}
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._revoked = revoked
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def set_revoked(self, token_ids: Iterable[str]) -> None:
        """Replace the revoked credential ids (``shared.auth.revocation`` keeps them current).

        Checked on every call, cached or not, so a revocation takes effect at
        once in this process.
        """
        self._revoked = frozenset(token_ids)

    def verify(self, token: str) -> Principal:
        """Verify a token; a token seen recently is answered from a small cache until it expires.

        Integrators send the same credential with every request, and a signature
        check costs far more than the rest of a small request's auth work.
        """
        cached = self._cache.get(token)
        if cached is not None and cached[1] > time.time():
            if cached[0].token_id in self._revoked:
                raise AuthError(401, "credential has been revoked")
            self._cache.move_to_end(token)
            return cached[0]
        principal, expires = self._verify_uncached(token)
        self._cache[token] = (principal, expires)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    def _verify_uncached(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError(401, "credential is not a well-formed token") from None
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise AuthError(401, "credential is signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "tenant", "jti", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "credential has expired") from None
        except jwt.InvalidTokenError as error:
            raise AuthError(401, f"credential refused: {error}") from None
        tenant = claims.get("tenant")
        if not isinstance(tenant, str) or not TENANT_PATTERN.match(tenant):
            raise AuthError(401, "credential names no valid tenant")
        if claims["jti"] in self._revoked:
            raise AuthError(401, "credential has been revoked")
        scope = claims.get("scope", "")
        principal = Principal(
            tenant_id=tenant,
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            subject=str(claims.get("sub", "")),
            token_id=str(claims["jti"]),
        )
        return principal, float(claims["exp"]) + self._leeway
