"""The rows intake writes for a batch, and the deliveries it hands straight to the dispatcher."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.notifications.delivery.outcomes import Claimed
from services.notifications.email.rules import Recipient, goal_of, mentee_of
from services.notifications.models import Delivery, Endpoint, Message
from services.notifications.repository import PENDING
from shared.events.envelope import CloudEvent


@dataclass
class Rows:
    """What one batch inserts, as plain values."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    digests: list[dict[str, Any]] = field(default_factory=list)
    handed: list[HandedOver] = field(default_factory=list)
    """Deliveries leased to this process's dispatcher, started once the batch commits."""
    refused: set[str] = field(default_factory=set)
    """Lanes of deliveries due now that the dispatcher had no room for."""


class Handoff(Protocol):
    """The dispatcher, as intake sees it (see ``Dispatcher.reserve``)."""

    def reserve(self, lane: str, endpoint: Endpoint | None) -> bool: ...

    def unreserve(self, lane: str) -> None: ...

    def written(self, lanes: set[str]) -> None: ...

    def lease_until(self) -> datetime: ...

    def hand_over(self, items: list[Claimed]) -> None: ...


@dataclass(frozen=True, slots=True)
class HandedOver:
    delivery: dict[str, Any]
    lane: str
    endpoint: Endpoint | None

    def claimed(self, message: dict[str, Any]) -> Claimed:
        return Claimed(
            delivery_id=self.delivery["id"],
            channel=self.delivery["channel"],
            attempts=0,
            message=Message(**message),
            endpoint=self.endpoint,
            recipient=self.delivery["recipient"],
            lane=self.lane,
        )


def delivery_values(
    tenant_id: str,
    message_id: str,
    channel: str,
    now: datetime,
    endpoint_id: str | None,
    *,
    due: datetime | None = None,
    recipient: dict[str, Any] | None = None,
    replay_of: str | None = None,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "message_id": message_id,
        "channel": channel,
        "endpoint_id": endpoint_id,
        "recipient": recipient,
        "replay_of": replay_of,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": due or now,
        "locked_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


def new_delivery(
    tenant_id: str,
    message_id: str,
    channel: str,
    now: datetime,
    endpoint_id: str | None,
    *,
    due: datetime | None = None,
    recipient: dict[str, Any] | None = None,
    replay_of: str | None = None,
) -> Delivery:
    return Delivery(
        **delivery_values(
            tenant_id,
            message_id,
            channel,
            now,
            endpoint_id,
            due=due,
            recipient=recipient,
            replay_of=replay_of,
        )
    )


def digest_values(event: CloudEvent, person: Recipient, now: datetime) -> dict[str, Any]:
    goal = goal_of(event)
    assert goal is not None
    mentee = mentee_of(event)
    risk = getattr(event.data, "risk", None)
    streak: int | None = None
    if event.type == "streak.updated":
        streak = int(getattr(event.data, "current", 0))
    elif event.type == "streak.broken":
        streak = 0
    return {
        "tenant_id": event.tenantid,
        "email": person.email,
        "role": person.role,
        "recipient_name": person.name,
        "event_id": event.id,
        "event_type": event.type,
        "goal_id": goal.goal_id,
        "goal_title": goal.title,
        "mentee_name": mentee.name if mentee else goal.title,
        "risk_score": getattr(risk, "score", None),
        "streak": streak,
        "occurred_at": event.time,
        "digest_id": None,
        "created_at": now,
    }
