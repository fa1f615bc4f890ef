"""Privacy events (topic ``privacy``): a person's erasure, requested and confirmed per service.

They name the person only by ``person_key``, a keyed hash of tenant and
email (see ``shared/privacy/keys.py``), so the events themselves, the topic
and every copy a consumer stores hold no address. Goals emits
``person.erasure_requested``; sessions and notifications each answer with
``person.erased`` once their part is gone, and goals completes the erasure
when both have. Integrators' endpoints receive both, so they can forget the
person too (match ``reference``, the id the caller gave, or their own
records of the erasure id).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.catalog.common import Identifier
from shared.events.envelope import CloudEvent, EventData

PRIVACY_TOPIC = "privacy"
ErasingService = Literal["goals", "sessions", "notifications"]


class PersonErasureRequestedData(EventData):
    erasure_id: Identifier
    person_key: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="HMAC-SHA256 of tenant and lower-cased email under the deployment's "
        "privacy key: services find the person by hashing the addresses they hold.",
    )
    reference: str | None = Field(
        default=None,
        max_length=128,
        description="The caller's own id for the person (never the address), echoed back.",
    )
    goal_ids: list[Identifier] = Field(
        default_factory=list,
        max_length=10_000,
        description="The goals the person took part in, as goals knew them.",
    )
    requested_at: datetime
    broker_copies_expire_at: datetime = Field(
        description="By then the topics' retention has removed every earlier event naming the "
        "person from the broker."
    )


class PersonErasedData(EventData):
    erasure_id: Identifier
    service: ErasingService
    person_key: str = Field(pattern=r"^[0-9a-f]{64}$")
    reference: str | None = Field(default=None, max_length=128)
    records: int = Field(ge=0, description="How many stored records this service changed.")
    erased_at: datetime


class _PrivacyTopicEvent(CloudEvent):
    topic: ClassVar[str] = PRIVACY_TOPIC


class PersonErasureRequested(_PrivacyTopicEvent):
    """A tenant asked to forget a person: every service erases what it holds about them."""

    type: Literal["person.erasure_requested"] = "person.erasure_requested"
    data: PersonErasureRequestedData


class PersonErased(_PrivacyTopicEvent):
    """One service has erased its part (goals counts its own part as the request)."""

    type: Literal["person.erased"] = "person.erased"
    data: PersonErasedData


PRIVACY_EVENTS: tuple[type[CloudEvent], ...] = (PersonErasureRequested, PersonErased)
