"""Control events (topic ``control``): instructions to every service, not domain facts.

Published by the operator CLI; every service consumes the topic in a consumer
group of its own, so each one hears every instruction. They are never routed
to webhooks or email.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from shared.events.catalog.common import Identifier
from shared.events.envelope import CloudEvent, EventData

CONTROL_TOPIC = "control"


class CredentialRevokedData(EventData):
    token_id: Identifier = Field(description="The credential's `jti`.")
    expires_at: datetime | None = Field(
        default=None,
        description="When the credential expires anyway; the revocation can be forgotten after.",
    )
    reason: str | None = Field(default=None, max_length=200)


class _ControlTopicEvent(CloudEvent):
    topic: ClassVar[str] = CONTROL_TOPIC


class CredentialRevoked(_ControlTopicEvent):
    """Every service refuses the credential from now on (the tenant is the credential's)."""

    type: Literal["credential.revoked"] = "credential.revoked"
    data: CredentialRevokedData


CONTROL_EVENTS: tuple[type[CloudEvent], ...] = (CredentialRevoked,)
