"""Opaque keyset cursors: (timestamp, id) of the last item, so pages never skip or repeat.

For lists ordered newest first by (a moment, an id): the notifications
messages and endpoints, every service's dead letters.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from shared.http.problems import ProblemError


def encode_cursor(moment: datetime, item_id: str) -> str:
    raw = json.dumps([moment.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None or not isinstance(item_id, str):
            raise ValueError("bad cursor")
        return parsed, item_id
    except (ValueError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ProblemError(
            422,
            "cursor is not one this API issued",
            slug="validation-error",
            errors=[{"field": "query.cursor", "message": "invalid cursor"}],
        ) from None
