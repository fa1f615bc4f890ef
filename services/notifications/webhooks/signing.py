"""Standard Webhooks secrets and signatures, and the secrets' encryption at rest.

The signature itself comes from the ``standardwebhooks`` reference library, so
what we send is exactly what every verifier checks. Secrets are stored
encrypted (AES-GCM under a key derived from the ``secrets_key`` setting) so a
copy of the database alone cannot forge webhooks.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks.webhooks import Webhook

SECRET_BYTES = 32
SECRET_PREFIX = "whsec_"
_ENCRYPTED_PREFIX = "enc:v1:"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts endpoint secrets for storage; the table never holds one in the clear."""

    def __init__(self, key_material: str) -> None:
        key = hashlib.sha256(b"followthrough-webhook-secrets:" + key_material.encode()).digest()
        self._aead = AESGCM(key)

    def seal(self, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), b"endpoint-secret")
        return _ENCRYPTED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(_ENCRYPTED_PREFIX):
            return stored  # written before encryption at rest existed
        raw = base64.urlsafe_b64decode(stored[len(_ENCRYPTED_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], b"endpoint-secret").decode()
        except InvalidTag:
            raise ValueError("endpoint secret cannot be decrypted with this secrets_key") from None


def signature_header(
    secrets_in_use: list[str], msg_id: str, timestamp: datetime, body: bytes
) -> str:
    """One ``v1,<sig>`` per secret, space separated (several during a rotation)."""
    payload = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id, timestamp, payload) for secret in secrets_in_use)


def webhook_headers(
    secrets_in_use: list[str], msg_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(secrets_in_use, msg_id, timestamp, body),
    }
