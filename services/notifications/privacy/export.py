"""Notifications' part of a person's export: preferences, unsubscribes, digest, emails sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.notifications.models import Delivery, DigestEntry, Preference, Unsubscribe
from services.notifications.privacy.suppression import suppressed_keys
from shared.db import core
from shared.db.database import Database
from shared.privacy.erasure import PersonFinder

MAX_DELIVERIES = 1000


class NotificationsExport:
    def __init__(self, database: Database, privacy_key: str) -> None:
        self._db = database
        self._finder = PersonFinder(privacy_key)

    async def __call__(self, tenant_id: str, email: str) -> dict[str, Any]:
        async with self._db.reader() as session:
            preference = await session.scalar(
                select(Preference).where(
                    Preference.tenant_id == tenant_id, Preference.email == email
                )
            )
            unsubscribed = sorted(
                (
                    await session.execute(
                        select(Unsubscribe.event_type).where(
                            Unsubscribe.tenant_id == tenant_id, Unsubscribe.email == email
                        )
                    )
                ).scalars()
            )
            digest = [
                {
                    "event_type": d.event_type,
                    "goal_id": d.goal_id,
                    "occurred_at": d.occurred_at,
                    "digest_id": d.digest_id,
                }
                for d in (
                    await session.execute(
                        select(DigestEntry)
                        .where(DigestEntry.tenant_id == tenant_id, DigestEntry.email == email)
                        .order_by(DigestEntry.occurred_at)
                    )
                ).scalars()
            ]
            rows = await session.execute(
                select(Delivery)
                .where(Delivery.tenant_id == tenant_id, Delivery.channel == "email")
                .order_by(Delivery.created_at.desc())
            )
            emails = []
            for delivery in rows.scalars():
                recipient = delivery.recipient or {}
                if str(recipient.get("email", "")).lower() != email:
                    continue
                emails.append(
                    {
                        "delivery_id": delivery.id,
                        "message_id": delivery.message_id,
                        "status": delivery.status,
                        "attempts": delivery.attempts,
                        "created_at": delivery.created_at,
                    }
                )
                if len(emails) >= MAX_DELIVERIES:
                    break
            key = self._finder.key(tenant_id, email)
            suppressed = bool(
                await core.run_on_connection(
                    session, lambda connection: suppressed_keys(connection, [(tenant_id, key)])
                )
            )
        return {
            "preference": None
            if preference is None
            else {
                "delivery": preference.delivery,
                "digest_day": preference.digest_day,
                "digest_hour": preference.digest_hour,
                "timezone": preference.timezone,
                "quiet_start": preference.quiet_start,
                "quiet_end": preference.quiet_end,
            },
            "unsubscribed": unsubscribed,
            "digest_entries": digest,
            "emails": emails,
            "suppressed": suppressed,
        }
