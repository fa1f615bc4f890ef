"""Every query of the notifications database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.models import Attempt, Delivery, Endpoint, Message


class NotificationsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        result: Endpoint | None = (
            await self._session.execute(
                select(Endpoint).where(Endpoint.tenant_id == tenant_id, Endpoint.id == endpoint_id)
            )
        ).scalar_one_or_none()
        return result

    async def endpoints_by_id(self, ids: Sequence[str]) -> dict[str, Endpoint]:
        if not ids:
            return {}
        rows = await self._session.execute(select(Endpoint).where(Endpoint.id.in_(ids)))
        return {endpoint.id: endpoint for endpoint in rows.scalars()}

    async def enabled_endpoints(self, tenant_id: str) -> Sequence[Endpoint]:
        rows = await self._session.execute(
            select(Endpoint).where(Endpoint.tenant_id == tenant_id, Endpoint.enabled.is_(True))
        )
        return rows.scalars().all()

    async def message_exists(self, message_id: str) -> bool:
        found = await self._session.scalar(select(Message.id).where(Message.id == message_id))
        return found is not None

    def add(self, *rows: Endpoint | Message | Delivery | Attempt) -> None:
        self._session.add_all(rows)

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        """Lease due deliveries to this worker; SKIP LOCKED keeps replicas from sharing one."""
        query = (
            select(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
                or_(Delivery.locked_until.is_(None), Delivery.locked_until < now),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        deliveries = list((await self._session.execute(query)).scalars())
        if deliveries:
            await self._session.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in deliveries]))
                .values(locked_until=lease_until)
            )
        return deliveries

    async def messages_by_id(self, ids: Sequence[str]) -> dict[str, Message]:
        if not ids:
            return {}
        rows = await self._session.execute(select(Message).where(Message.id.in_(ids)))
        return {message.id: message for message in rows.scalars()}

    async def delivery(self, delivery_id: str) -> Delivery | None:
        result: Delivery | None = await self._session.get(Delivery, delivery_id)
        return result

    async def next_due(self) -> datetime | None:
        result: datetime | None = await self._session.scalar(
            select(Delivery.next_attempt_at)
            .where(and_(Delivery.status == "pending", Delivery.next_attempt_at.is_not(None)))
            .order_by(Delivery.next_attempt_at)
            .limit(1)
        )
        return result
