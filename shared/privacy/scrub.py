"""Removing one person from stored JSON and text, wherever it appears.

A participant object (anything with an ``email``) naming the person gets the
stand-in address and name; the address anywhere else in a string (a note, an
error text, a response excerpt) is replaced by the stand-in address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.privacy.keys import ERASED_NAME, anonymised_email, normalise_email


@dataclass
class Target:
    """The person being erased: their key and every address of theirs this service found."""

    key: str
    emails: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    @property
    def stand_in(self) -> str:
        return anonymised_email(self.key)

    def _pattern(self) -> re.Pattern[str] | None:
        if not self.emails:
            return None
        return re.compile("|".join(re.escape(e) for e in sorted(self.emails)), re.IGNORECASE)

    def names_person(self, value: Any) -> bool:
        return (
            isinstance(value, dict)
            and isinstance(value.get("email"), str)
            and normalise_email(value["email"]) in self.emails
        )

    def scrub_text(self, text: str) -> str:
        pattern = self._pattern()
        return pattern.sub(self.stand_in, text) if pattern is not None else text

    def scrub(self, value: Any) -> Any:
        """A copy of a JSON value without the person (participants replaced, addresses masked)."""
        if isinstance(value, dict):
            if self.names_person(value):
                if isinstance(value.get("name"), str):
                    self.names.add(value["name"])
                value = {**value, "email": self.stand_in}
                if "name" in value:
                    value["name"] = ERASED_NAME
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        if isinstance(value, str):
            return self.scrub_text(value)
        return value

    def scrub_bytes(self, payload: bytes) -> bytes:
        """JSON bytes scrubbed as JSON (kept compact); anything else as text."""
        try:
            decoded = orjson.loads(payload)
        except orjson.JSONDecodeError:
            try:
                return self.scrub_text(payload.decode()).encode()
            except UnicodeDecodeError:
                return payload
        cleaned = self.scrub(decoded)
        return payload if cleaned == decoded else orjson.dumps(cleaned)

    def mentions(self, payload: bytes | str | None) -> bool:
        """Whether raw bytes or text hold one of the person's addresses (cheap pre-filter)."""
        if payload is None or not self.emails:
            return False
        text = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
        lowered = text.lower()
        return any(email in lowered for email in self.emails)


def emails_with_key(candidates: Iterable[str], key: str, hasher: Any) -> set[str]:
    """Which of ``candidates`` (addresses) hash to ``key`` under ``hasher(email)``."""
    return {normalise_email(e) for e in candidates if hasher(e) == key}


def participant_emails(value: Any) -> set[str]:
    """Every address of a participant-like object anywhere in a JSON value."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            email = item.get("email")
            if isinstance(email, str):
                found.add(normalise_email(email))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
