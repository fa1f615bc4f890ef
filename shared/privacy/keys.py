"""Who a person is, without naming them: a keyed hash of tenant and email.

Erasure events and suppression entries carry ``person_key`` (HMAC-SHA256 of
the tenant and the normalised email, keyed with the deployment's privacy key,
which every service shares), never the address itself: a service finds the
person by hashing the addresses it holds, and a suppression entry keeps no
address that could be read back. Without the key the hash cannot be tested
against a list of guessed addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import re

ERASED_DOMAIN = "erased.example"
"""Anonymised participants get an address here; nothing is ever sent to this domain."""
ERASED_NAME = "Erased person"
PERSON_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def person_key(secret: str, tenant_id: str, email: str) -> str:
    """The person's key in one tenant: HMAC-SHA256(secret, tenant NUL email), hex."""
    message = f"{tenant_id}\x00{normalise_email(email)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def anonymised_email(key: str) -> str:
    """The stand-in address an erased participant keeps (the goal still needs one)."""
    return f"erased-{key[:16]}@{ERASED_DOMAIN}"


def is_erased_address(email: str) -> bool:
    return normalise_email(email).endswith(f"@{ERASED_DOMAIN}")
