"""Value types shared by several event families: roles, people, time zones."""

from __future__ import annotations

import zoneinfo
from datetime import time
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field, WithJsonSchema

from shared.events.envelope import EventData

Role = Literal["mentee", "mentor", "coach", "sponsor", "peer"]
ROLES: tuple[Role, ...] = ("mentee", "mentor", "coach", "sponsor", "peer")


@lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(name: str) -> str:
    """Accept only canonical IANA names (``Europe/Berlin``), never offsets or abbreviations."""
    if name not in known_time_zones():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["Europe/Berlin"]),
    AfterValidator(check_time_zone),
]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$",
            "description": "A wall-clock time without offset (HH:MM[:SS]); the zone is given "
            "separately.",
            "examples": ["09:00"],
        }
    ),
]
"""A local time of day. JSON Schema's ``time`` format demands an offset, which a
wall-clock time in a named zone must not have, so the schema is a pattern."""
Identifier = Annotated[str, Field(min_length=1, max_length=128)]


class Participant(EventData):
    """A person on a goal. The mentee's zone is the goal's zone; others may have their own."""

    role: Role
    name: ShortText
    email: EmailStr
    timezone: TimeZoneName | None = None
