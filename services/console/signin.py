"""Who is signed in: the credential kept in an encrypted, HttpOnly, SameSite=Strict cookie.

The console keeps no database, so the signed-in credential travels in the
session cookie, sealed with AES-GCM under a key derived from
``CONSOLE_SESSION_SECRET``: the browser holds it but cannot read or change
it, page script never sees it (HttpOnly, and the pages carry no script), and
another site cannot make the browser send it (SameSite=Strict). Every request
opens the cookie and verifies the credential again with the shared verifier,
so an expired credential ends the session.

Each session has an id and a CSRF token of its own; every form carries the
token and every POST is refused without it. Signing out clears the cookie
and remembers the session id as revoked until the session would have
expired, so a copy of the cookie taken before is refused by this process too
(replicas do not share that memory: there a copy lasts until its expiry, at
most ``CONSOLE_SESSION_HOURS``).
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SESSION_COOKIE = "ft_console"
PRE_SESSION_COOKIE = "ft_console_signin"
SECRET_COOKIE = "ft_console_secret"
MAX_CREDENTIAL_LENGTH = 2500
"""A cookie holds about 4 KB; a Followthrough credential is well under 1 KB."""
SECRET_SHOWN_SECONDS = 120


class Sealer:
    """Seals small JSON values for cookies (AES-GCM; a purpose string as associated data)."""

    def __init__(self, secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"followthrough-console-cookie"
        ).derive(secret.encode())
        self._aead = AESGCM(key)
        self._mac_key = sha256(b"csrf:" + key).digest()

    def seal(self, purpose: str, value: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, orjson.dumps(value), purpose.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, purpose: str, token: str | None) -> dict[str, Any] | None:
        """The value, or None for anything missing, tampered with or sealed for another purpose."""
        if not token or len(token) > 8192:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            value = orjson.loads(self._aead.decrypt(raw[:12], raw[12:], purpose.encode()))
        except (ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def mac(self, text: str) -> str:
        return hmac.new(self._mac_key, text.encode(), sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    credential: str
    csrf: str
    tenant_id: str
    expires_at: float

    @classmethod
    def new(
        cls, credential: str, tenant_id: str, lifetime: float, credential_expires: float
    ) -> Session:
        return cls(
            id=secrets.token_urlsafe(16),
            credential=credential,
            csrf=secrets.token_urlsafe(24),
            tenant_id=tenant_id,
            expires_at=min(time.time() + lifetime, credential_expires),
        )

    def to_cookie(self) -> dict[str, Any]:
        return {
            "sid": self.id,
            "tok": self.credential,
            "csrf": self.csrf,
            "tenant": self.tenant_id,
            "exp": self.expires_at,
        }

    @classmethod
    def from_cookie(cls, value: dict[str, Any]) -> Session | None:
        try:
            session = cls(
                id=str(value["sid"]),
                credential=str(value["tok"]),
                csrf=str(value["csrf"]),
                tenant_id=str(value["tenant"]),
                expires_at=float(value["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return session if session.expires_at > time.time() else None

    def csrf_matches(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf, submitted or "")


class Revocations:
    """Session ids signed out in this process, kept until those sessions would have expired."""

    def __init__(self, limit: int = 100_000) -> None:
        self._until: dict[str, float] = {}
        self._limit = limit

    def revoke(self, session: Session) -> None:
        now = time.time()
        if len(self._until) >= self._limit:
            self._until = {sid: exp for sid, exp in self._until.items() if exp > now}
        self._until[session.id] = session.expires_at

    def revoked(self, session_id: str) -> bool:
        expires = self._until.get(session_id)
        if expires is None:
            return False
        if expires <= time.time():
            del self._until[session_id]
            return False
        return True
