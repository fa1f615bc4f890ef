"""The weekly digest: one email per recipient who prefers it, at their day and hour, in their zone.

Intake collects digest entries for those recipients instead of emailing them
one by one; this scheduler, at each recipient's weekly slot, rolls the
entries up per mentee (check-ins, misses, streak, milestones), ranks mentees
by the at-risk score the sessions events carried, and queues one email. An
empty week queues nothing. The digest's message id is derived from the
recipient and the slot, and the recipient's ``last_digest_at`` only moves
forward by compare-and-set, so replicas never send a week twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.notifications.email.repository import EmailRepository
from services.notifications.email.rules import DIGEST_EVENT_TYPE
from services.notifications.intake_rows import new_delivery
from services.notifications.models import DigestEntry, Message, Preference
from services.notifications.settings import WEEKDAY_NAMES, NotificationsSettings
from shared.clock import Clock
from shared.db.database import Database
from shared.logs import get_logger

log = get_logger(__name__)
SCAN_LIMIT = 5000


class _AlreadyDone(Exception):
    """Another replica advanced this recipient first; roll this transaction back."""


def latest_slot(now: datetime, zone: str, day: str, hour: int) -> datetime:
    """The most recent weekly slot (local day and hour in ``zone``) at or before ``now``."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    back = (local.weekday() - WEEKDAY_NAMES.index(day)) % 7
    slot = datetime.combine(local.date() - timedelta(days=back), time(hour), tzinfo=tz)
    if slot > now:
        slot = datetime.combine(slot.date() - timedelta(days=7), time(hour), tzinfo=tz)
    return slot.astimezone(now.tzinfo)


def roll_up(entries: list[DigestEntry]) -> list[dict[str, Any]]:
    """Per goal (mentee): counts of the week, latest streak and risk; riskiest first."""
    by_goal: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: (e.occurred_at, e.id)):
        item = by_goal.setdefault(
            entry.goal_id,
            {
                "goal_id": entry.goal_id,
                "goal_title": entry.goal_title,
                "mentee_name": entry.mentee_name,
                "checkins": 0,
                "misses": 0,
                "milestones": 0,
                "streak": None,
                "risk_score": None,
            },
        )
        if entry.event_type == "checkin.completed":
            item["checkins"] += 1
        elif entry.event_type == "checkin.missed":
            item["misses"] += 1
        elif entry.event_type == "milestone.completed":
            item["milestones"] += 1
        if entry.streak is not None:
            item["streak"] = entry.streak
        if entry.risk_score is not None:
            item["risk_score"] = entry.risk_score
    return sorted(
        by_goal.values(),
        key=lambda i: (-(i["risk_score"] if i["risk_score"] is not None else -1), i["mentee_name"]),
    )


class DigestScheduler:
    def __init__(
        self,
        database: Database,
        settings: NotificationsSettings,
        clock: Clock,
        wake_dispatcher: asyncio.Event,
    ) -> None:
        self._db = database
        self._settings = settings
        self._clock = clock
        self._wake = wake_dispatcher
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.poke = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="digest-scheduler")

    async def stop(self) -> None:
        self._stopping.set()
        self.poke.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception as error:
                log.warning("digest.tick.failed", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.poke.wait(), self._settings.digest_poll_seconds)
            self.poke.clear()

    async def run_once(self) -> int:
        """Queue every digest that is due; returns how many emails were queued."""
        now = self._clock.now()
        async with self._db.reader() as session:
            recipients = await EmailRepository(session).digest_recipients(SCAN_LIMIT)
        queued = 0
        for preference in recipients:
            slot = latest_slot(
                now,
                preference.timezone or "UTC",
                preference.digest_day or self._settings.digest_day,
                preference.digest_hour
                if preference.digest_hour is not None
                else self._settings.digest_hour,
            )
            if preference.last_digest_at is not None and preference.last_digest_at >= slot:
                continue
            with contextlib.suppress(_AlreadyDone):
                queued += await self._queue(preference, slot, now)
        if queued:
            self._wake.set()
        return queued

    async def _queue(self, preference: Preference, slot: datetime, now: datetime) -> int:
        async with self._db.transaction() as session:
            repository = EmailRepository(session)
            if not await repository.advance_digest(
                preference.tenant_id, preference.email, preference.last_digest_at, slot
            ):
                raise _AlreadyDone
            entries = await repository.pending_entries(preference.tenant_id, preference.email, slot)
            if not entries:
                log.info("digest.empty", slot=slot.isoformat())
                return 0
            key = f"{preference.tenant_id}|{preference.email}|{slot.isoformat()}"
            digest_id = "digest-" + hashlib.sha256(key.encode()).hexdigest()[:32]
            mentees = roll_up(entries)
            latest = entries[-1]
            payload = {
                "id": digest_id,
                "type": DIGEST_EVENT_TYPE,
                "time": slot.isoformat(),
                "tenantid": preference.tenant_id,
                "digest": {
                    "week_start": (slot - timedelta(days=7)).isoformat(),
                    "week_end": slot.isoformat(),
                    "mentees": mentees,
                },
            }
            session.add(
                Message(
                    id=digest_id,
                    tenant_id=preference.tenant_id,
                    event_type=DIGEST_EVENT_TYPE,
                    kind="digest",
                    goal_id=None,
                    correlation_id=digest_id,
                    payload=json.dumps(payload).encode(),
                    routing=[
                        {
                            "channel": "email",
                            "target": preference.email,
                            "role": latest.role,
                            "matched": True,
                            "reason": "matched",
                            "detail": f"weekly digest of {len(entries)} events",
                        }
                    ],
                    event_time=slot,
                    created_at=now,
                )
            )
            await session.flush()
            recipient = {
                "email": preference.email,
                "name": latest.recipient_name,
                "role": latest.role,
                "timezone": preference.timezone or "UTC",
                "quiet": None,
            }
            session.add(
                new_delivery(
                    preference.tenant_id, digest_id, "email", now, None, recipient=recipient
                )
            )
            await repository.mark_digested([e.id for e in entries], digest_id)
        log.info("digest.queued", digest_id=digest_id, mentees=len(mentees), events=len(entries))
        return 1
