"""Opaque pagination cursors: base64url JSON that clients pass back unchanged.

A cursor remembers the position after the last item of a page and a digest
of the filters it was made for, so a cursor reused with other filters is
refused instead of silently paging through a different list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson

from shared.http.problems import ProblemError


def encode(position: dict[str, Any], *, scope: str = "") -> str:
    body = {**position, "s": _digest(scope)}
    return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")


def decode(cursor: str, *, scope: str = "") -> dict[str, Any]:
    """The position in ``cursor``; 400 naming ``query.cursor`` when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        raise invalid_cursor("cursor is not valid") from None
    if not isinstance(body, dict):
        raise invalid_cursor("cursor is not valid")
    if body.pop("s", None) != _digest(scope):
        raise invalid_cursor("cursor was made for other filters")
    return body


def invalid_cursor(message: str) -> ProblemError:
    return ProblemError(
        400,
        f"query.cursor: {message}",
        slug="invalid-cursor",
        errors=[{"field": "query.cursor", "message": message}],
    )


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:12]
