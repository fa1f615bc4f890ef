"""Signed action links: a URL that lets one person do one thing, without a credential.

Emails carry links such as "I've checked in", "acknowledge", "snooze" and
"unsubscribe". The recipient has no API credential, so the link itself is
the authorisation: a short JWT (HS256 with the deployment's link secret)
naming the tenant, the action, its subject and who it is for, with an expiry.
Notifications signs them; the service that performs the action verifies them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

LINK_AUDIENCE = "followthrough-link"


class LinkError(Exception):
    """The link is malformed, tampered with, expired, or for another action."""


def sign_link(
    secret: str,
    *,
    action: str,
    tenant_id: str,
    subject: str,
    claims: dict[str, Any] | None = None,
    ttl: timedelta = timedelta(days=14),
    now: datetime | None = None,
) -> str:
    issued = now or datetime.now(UTC)
    payload: dict[str, Any] = {
        **(claims or {}),
        "act": action,
        "tenant": tenant_id,
        "sub": subject,
        "aud": LINK_AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def verify_link(
    secret: str, token: str, *, action: str, now: datetime | None = None
) -> dict[str, Any]:
    """The link's claims, if it is genuine, unexpired and for ``action``.

    ``now`` is the service's clock (the one ``sign_link`` was given); without
    it the expiry is checked against the system clock.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=LINK_AUDIENCE,
            options={
                "require": ["exp", "act", "tenant", "sub"],
                "verify_exp": now is None,
                "verify_iat": now is None,
            },
        )
    except jwt.ExpiredSignatureError:
        raise LinkError("link has expired") from None
    except jwt.InvalidTokenError:
        raise LinkError("link is not valid") from None
    if now is not None:
        try:
            expires = int(claims["exp"])
        except (TypeError, ValueError):
            raise LinkError("link is not valid") from None
        if int(now.timestamp()) >= expires:
            raise LinkError("link has expired")
    if claims.get("act") != action:
        raise LinkError("link is for another action")
    return claims
