"""Suppression: an erased person is never emailed again in that tenant, nor stored again.

Intake asks once per batch which of the batch's people (by key) are
suppressed. Their emails are not routed (reason ``erased``), no digest entry
is kept for them, and an event naming them (one still in flight when the
erasure ran, or replayed from an older offset) is stored already scrubbed
and marked erased, so it can never be replayed to an endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_

from services.notifications.email.rules import goal_of
from services.notifications.models import ErasedMessage, Suppression
from shared.events.envelope import CloudEvent
from shared.privacy.erasure import PersonFinder
from shared.privacy.keys import anonymised_email, normalise_email
from shared.privacy.scrub import Target


@dataclass
class Suppressed:
    """The suppressed people among one batch's, by (tenant, address)."""

    people: set[tuple[str, str]] = field(default_factory=set)
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    def __contains__(self, pair: object) -> bool:
        return pair in self.people

    def stand_in(self, tenant_id: str, email: str) -> str:
        return anonymised_email(self.keys[(tenant_id, email)])

    def scrub(self, event: CloudEvent, payload: bytes) -> bytes | None:
        """The payload without the suppressed people it names; None when it names none."""
        goal = goal_of(event)
        if goal is None or not self.people:
            return None
        named = {
            normalise_email(str(p.email))
            for p in goal.participants
            if (event.tenantid, normalise_email(str(p.email))) in self.people
        }
        if not named:
            return None
        cleaned = payload
        for email in named:
            cleaned = Target(self.keys[(event.tenantid, email)], {email}).scrub_bytes(cleaned)
        return cleaned


class SuppressionCheck:
    def __init__(self, privacy_key: str) -> None:
        self._finder = PersonFinder(privacy_key)

    def load(self, connection: Connection, events: Sequence[CloudEvent]) -> Suppressed:
        """The suppressed people among ``events``' (synchronous: part of intake's run_core)."""
        keys: dict[tuple[str, str], str] = {}
        for event in events:
            goal = goal_of(event)
            if goal is None:
                continue
            for person in goal.participants:
                pair = (event.tenantid, normalise_email(str(person.email)))
                if pair not in keys:
                    keys[pair] = self._finder.key(*pair)
        suppressed = Suppressed()
        if not keys:
            return suppressed
        wanted = {(tenant, key) for (tenant, _), key in keys.items()}
        found = suppressed_keys(connection, wanted)
        for pair, key in keys.items():
            if (pair[0], key) in found:
                suppressed.people.add(pair)
                suppressed.keys[pair] = key
        return suppressed


_SUPPRESSED_AMONG = select(Suppression.tenant_id, Suppression.person_key).where(
    tuple_(Suppression.tenant_id, Suppression.person_key).in_(bindparam("pairs", expanding=True))
)
"""The suppressed (tenant, person key) pairs among ``pairs``; built once (intake, every batch)."""


def suppressed_keys(
    connection: Connection, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (tenant, person key) pairs are suppressed, in chunks of 400."""
    pairs = sorted(set(pairs))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), 400):
        chunk = pairs[start : start + 400]
        rows = connection.execute(_SUPPRESSED_AMONG, {"pairs": chunk})
        found.update((str(row.tenant_id), str(row.person_key)) for row in rows)
    return found


def erased_message_rows(ids: Iterable[tuple[str, str]], now: datetime) -> list[dict[str, Any]]:
    """Rows marking (message id, tenant) erased at intake (no erasure id: the suppression's)."""
    return [
        {"message_id": i, "tenant_id": tenant, "erasure_id": None, "erased_at": now}
        for i, tenant in ids
    ]


__all__ = ["ErasedMessage", "Suppressed", "SuppressionCheck", "erased_message_rows"]
