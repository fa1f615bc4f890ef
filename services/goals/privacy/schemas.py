"""Request and response bodies of the erasure API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from services.goals.schemas import _Strict
from shared.events.catalog.privacy import ErasingService

ErasureStatus = Literal["in_progress", "completed"]
PartStatus = Literal["pending", "erased"]


class ErasureRequest(_Strict):
    email: EmailStr = Field(description="The person's address, as the tenant's goals hold it.")
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$",
        description="Your own id for the person (a user id, a ticket), echoed in the erasure "
        "and its events; never put the address here.",
    )


class ErasurePart(_Strict):
    status: PartStatus
    records: int | None = Field(default=None, description="Stored records this service changed.")
    erased_at: datetime | None = None


class ErasureOut(_Strict):
    id: str
    status: ErasureStatus
    reference: str | None
    requested_at: datetime
    completed_at: datetime | None
    broker_copies_expire_at: datetime = Field(
        description="By then the broker's topics no longer hold any event from before the "
        "erasure (the topics' retention.ms); webhooks already delivered cannot be recalled."
    )
    services: dict[ErasingService, ErasurePart]
