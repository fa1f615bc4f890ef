"""Standard Webhooks secrets and signatures.

The signature itself comes from the ``standardwebhooks`` reference library, so
what we send is exactly what every verifier checks.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_BYTES = 32


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


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
