"""What sessions and notifications share when erasing their part of a person."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.events.catalog.privacy import (
    ErasingService,
    PersonErased,
    PersonErasedData,
    PersonErasureRequested,
)
from shared.events.registry import build_event
from shared.privacy.keys import is_erased_address, normalise_email, person_key
from shared.privacy.scrub import Target


class PersonFinder:
    """Recognises the person behind a key among the addresses a service holds."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def key(self, tenant_id: str, email: str) -> str:
        return person_key(self._secret, tenant_id, email)

    def add_matches(self, target: Target, tenant_id: str, emails: Iterable[str]) -> None:
        """Add to ``target`` every address of ``emails`` that is the person's."""
        for email in emails:
            address = normalise_email(email)
            if address in target.emails or is_erased_address(address):
                continue
            if self.key(tenant_id, address) == target.key:
                target.emails.add(address)


def erased_event(
    request: PersonErasureRequested, service: ErasingService, records: int, now: datetime
) -> PersonErased:
    """This service's confirmation, keyed like the request so it stays in its partition."""
    data = request.data
    return build_event(
        PersonErased,
        PersonErasedData(
            erasure_id=data.erasure_id,
            service=service,
            person_key=data.person_key,
            reference=data.reference,
            records=records,
            erased_at=now,
        ),
        tenant_id=request.tenantid,
        partition_key=request.partitionkey,
        source=f"/followthrough/{service}",
        subject=request.subject,
        time=now,
        causation_id=request.id,
        correlation_id=request.correlationid,
    )
