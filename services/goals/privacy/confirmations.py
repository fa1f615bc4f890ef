"""Goals follows the privacy topic: each ``person.erased`` moves its erasure on.

Goals' own ``person.erased`` is not sent: its part is done in the request's
transaction. A confirmation is recorded once (dedupe by event id), so a
redelivered one changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.goals.privacy.service import ErasureService
from shared.db.database import Database
from shared.events.catalog.privacy import PersonErased
from shared.kafka.consumed import ConsumedEvent, event_scope
from shared.kafka.dedupe import first_deliveries

CONSUMER = "goals.privacy"


class ErasureConfirmations:
    def __init__(self, database: Database, erasures: ErasureService) -> None:
        self._db = database
        self._erasures = erasures

    async def __call__(self, batch: Sequence[ConsumedEvent]) -> None:
        events = [item.event for item in batch if isinstance(item.event, PersonErased)]
        if not events:
            return
        async with self._db.transaction() as session:
            fresh = await first_deliveries(session, CONSUMER, [event.id for event in events])
            for event in events:
                if event.id not in fresh:
                    continue
                fresh.discard(event.id)
                with event_scope(event):
                    assert isinstance(event, PersonErased)
                    await self._erasures.confirm(session, event)
