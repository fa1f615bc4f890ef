"""Every query about endpoints, messages, deliveries and attempts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    CursorResult,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.notifications.models import Attempt, Delivery, Endpoint, Message, RoutingVersion
from shared.db import core

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
SUPERSEDED = "superseded"
T = TypeVar("T")


_deliveries = Delivery.__table__.c
_DELIVERY_PROGRESS = select(
    _deliveries.id,
    _deliveries.status,
    _deliveries.attempts,
    _deliveries.next_attempt_at,
    _deliveries.last_status_code,
    _deliveries.last_error,
).where(_deliveries.id.in_(bindparam("ids", expanding=True)))
_INSERT_ATTEMPT = insert(Attempt)
_ROUTING_VERSION = select(RoutingVersion.version).where(RoutingVersion.id == 1)
BUMP_ROUTING_VERSION = (
    update(RoutingVersion).where(RoutingVersion.id == 1).values(version=RoutingVersion.version + 1)
)
_MESSAGES_KNOWN = select(Message.id).where(Message.id.in_(bindparam("ids", expanding=True)))


class _Inserts(dict[Any, Any]):
    """One prebuilt INSERT per model, made on first use."""

    def __missing__(self, model: Any) -> Any:
        self[model] = statement = insert(model.__table__)
        return statement


_INSERT_INTO = _Inserts()
_ADVANCE_DELIVERY = (
    update(Delivery)
    .where(_deliveries.id == bindparam("delivery_id"))
    .values(
        status=bindparam("new_status"),
        attempts=bindparam("new_attempts"),
        next_attempt_at=bindparam("new_next_attempt_at"),
        locked_until=None,
        last_status_code=bindparam("new_last_status_code"),
        last_error=bindparam("new_last_error"),
        updated_at=bindparam("new_updated_at"),
    )
)


_endpoints = Endpoint.__table__.c
_ENDPOINTS_OF_TENANTS = (
    select(Endpoint)
    .where(Endpoint.tenant_id.in_(bindparam("tenants", expanding=True)))
    .order_by(Endpoint.created_at, Endpoint.id)
)
_MARK_FAILING = (
    update(Endpoint)
    .where(_endpoints.id == bindparam("target_endpoint_id"), _endpoints.failing_since.is_(None))
    .values(failing_since=bindparam("now"))
)
_CLEAR_FAILING = (
    update(Endpoint)
    .where(_endpoints.id == bindparam("target_endpoint_id"), _endpoints.failing_since.is_not(None))
    .values(failing_since=None)
)
_DISABLE_ENDPOINT = (
    update(Endpoint)
    .where(_endpoints.id == bindparam("target_endpoint_id"), _endpoints.enabled.is_(True))
    .values(enabled=False, disabled_reason=bindparam("reason"), updated_at=bindparam("now"))
)
_CANCEL_PENDING = (
    update(Delivery)
    .where(
        _deliveries.endpoint_id == bindparam("target_endpoint_id"), _deliveries.status == PENDING
    )
    .values(
        status=CANCELLED,
        last_error=bindparam("reason"),
        next_attempt_at=None,
        locked_until=None,
        updated_at=bindparam("now"),
    )
)


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


@dataclass(slots=True)
class DeliveryProgress:
    """The part of a delivery an attempt's outcome moves on (read and written with Core)."""

    id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """What the dispatcher needs of a due delivery to choose and start its attempt."""

    id: str
    message_id: str
    channel: str
    endpoint_id: str | None
    attempts: int
    recipient: dict[str, Any] | None


class NotificationsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def snapshot(self) -> None:
        """Make the rest of this read transaction see one snapshot (PostgreSQL).

        A message's deliveries and attempts are read by separate queries; under
        READ COMMITTED an attempt committed in between would show an attempt
        whose delivery still looks untried. SQLite readers already see one snapshot.
        """
        bind = self._session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            await self._session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))

    def add(self, *rows: Any) -> None:
        self._session.add_all(rows)

    async def flush(self) -> None:
        await self._session.flush()

    async def delete(self, row: Any) -> None:
        await self._session.delete(row)

    # Endpoints

    async def endpoint(self, tenant_id: str, endpoint_id: str) -> Endpoint | None:
        result: Endpoint | None = await self._session.scalar(
            select(Endpoint).where(Endpoint.tenant_id == tenant_id, Endpoint.id == endpoint_id)
        )
        return result

    async def endpoints_by_id(self, ids: Sequence[str]) -> dict[str, Endpoint]:
        if not ids:
            return {}
        rows = await self._session.execute(select(Endpoint).where(Endpoint.id.in_(set(ids))))
        return {endpoint.id: endpoint for endpoint in rows.scalars()}

    async def tenant_endpoints(self, tenant_ids: Sequence[str]) -> dict[str, list[Endpoint]]:
        """Every endpoint (disabled too, for the routing record) of these tenants, detached."""
        return await self.run_core(
            lambda connection: MessageIntake(connection).tenant_endpoints(tenant_ids)
        )

    async def list_endpoints(
        self, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[Endpoint]:
        query = select(Endpoint).where(Endpoint.tenant_id == tenant_id)
        if after is not None:
            created, endpoint_id = after
            query = query.where(
                or_(
                    Endpoint.created_at > created,
                    and_(Endpoint.created_at == created, Endpoint.id > endpoint_id),
                )
            )
        rows = await self._session.execute(
            query.order_by(Endpoint.created_at, Endpoint.id).limit(limit)
        )
        return list(rows.scalars())

    async def run_core(self, work: Callable[[Connection], T]) -> T:
        """Run synchronous Core work (``DeliveryOutcomes``) inside this session's transaction."""
        return await core.run_on_connection(self._session, work)

    async def endpoint_state_counts(self) -> dict[str, int]:
        rows = await self._session.execute(
            select(Endpoint.enabled, Endpoint.failing_since.is_not(None), func.count()).group_by(
                Endpoint.enabled, Endpoint.failing_since.is_not(None)
            )
        )
        counts = {"enabled": 0, "disabled": 0, "failing": 0}
        for enabled, failing, count in rows:
            if not enabled:
                counts["disabled"] += count
            else:
                counts["enabled"] += count
                if failing:
                    counts["failing"] += count
        return counts

    async def attempts_since(
        self, endpoint_id: str, since: datetime, limit: int
    ) -> list[tuple[bool, float | None]]:
        """(succeeded, latency) of the endpoint's attempts since a time, newest first."""
        rows = await self._session.execute(
            select(Attempt.status_code, Attempt.latency_ms)
            .join(Delivery, Delivery.id == Attempt.delivery_id)
            .where(Delivery.endpoint_id == endpoint_id, Attempt.started_at >= since)
            .order_by(Attempt.started_at.desc())
            .limit(limit)
        )
        return [(code is not None and 200 <= code < 300, latency) for code, latency in rows]

    async def delivery_outcomes(
        self, tenant_id: str, edges: Sequence[datetime]
    ) -> dict[str, list[int]]:
        """Per status, how many of the tenant's deliveries last changed in each [edge, next edge).

        One query: a conditional sum per bucket, so it needs no date function that
        SQLite and PostgreSQL spell differently.
        """
        buckets = [
            func.sum(case((and_(Delivery.updated_at >= lo, Delivery.updated_at < hi), 1), else_=0))
            for lo, hi in pairwise(edges)
        ]
        rows = await self._session.execute(
            select(Delivery.status, *buckets)
            .where(
                Delivery.tenant_id == tenant_id,
                Delivery.updated_at >= edges[0],
                Delivery.updated_at < edges[-1],
            )
            .group_by(Delivery.status)
        )
        return {str(row[0]): [int(count or 0) for count in row[1:]] for row in rows}

    # Messages

    async def message(self, tenant_id: str, message_id: str) -> Message | None:
        result: Message | None = await self._session.scalar(
            select(Message).where(Message.tenant_id == tenant_id, Message.id == message_id)
        )
        return result

    async def messages_by_id(self, ids: Sequence[str]) -> dict[str, Message]:
        if not ids:
            return {}
        rows = await self._session.execute(select(Message).where(Message.id.in_(set(ids))))
        return {message.id: message for message in rows.scalars()}

    async def list_messages(
        self,
        tenant_id: str,
        *,
        event_type: str | None,
        goal_id: str | None,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Message]:
        """Newest first, keyset-paginated on (created_at, id)."""
        query = select(Message).where(Message.tenant_id == tenant_id)
        if event_type:
            query = query.where(Message.event_type == event_type)
        if goal_id:
            query = query.where(Message.goal_id == goal_id)
        if since:
            query = query.where(Message.created_at >= since)
        if until:
            query = query.where(Message.created_at < until)
        if status:
            query = query.where(_status_clause(status))
        if before is not None:
            created, message_id = before
            query = query.where(
                or_(
                    Message.created_at < created,
                    and_(Message.created_at == created, Message.id < message_id),
                )
            )
        rows = await self._session.execute(
            query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
        )
        return list(rows.scalars())

    # Deliveries

    async def deliveries_of(self, message_ids: Sequence[str]) -> list[Delivery]:
        if not message_ids:
            return []
        rows = await self._session.execute(
            select(Delivery)
            .where(Delivery.message_id.in_(set(message_ids)))
            .order_by(Delivery.created_at, Delivery.id)
        )
        return list(rows.scalars())

    async def attempts_of(self, delivery_ids: Sequence[str]) -> list[Attempt]:
        if not delivery_ids:
            return []
        rows = await self._session.execute(
            select(Attempt)
            .where(Attempt.delivery_id.in_(set(delivery_ids)))
            .order_by(Attempt.delivery_id, Attempt.number)
        )
        return list(rows.scalars())

    async def delivery(self, delivery_id: str) -> Delivery | None:
        result: Delivery | None = await self._session.get(Delivery, delivery_id)
        return result

    async def due_candidates(
        self,
        now: datetime,
        limit: int,
        *,
        lease_now: datetime,
        skip_endpoints: Sequence[str],
        skip_email: bool,
    ) -> list[DueDelivery]:
        """Due (by ``now``), unleased (by ``lease_now``) deliveries of lanes with room, locked
        against other replicas.

        Only the columns the dispatcher needs, not ORM objects: a claim reads up to
        a batch of candidates and may take only the few its lanes have room for, so
        loading whole rows (and their messages) for all of them cost more than the
        attempts themselves.
        """
        query = select(
            Delivery.id,
            Delivery.message_id,
            Delivery.channel,
            Delivery.endpoint_id,
            Delivery.attempts,
            Delivery.recipient,
        ).where(
            Delivery.status == PENDING,
            Delivery.next_attempt_at <= now,
            or_(Delivery.locked_until.is_(None), Delivery.locked_until < lease_now),
        )
        if skip_endpoints:
            query = query.where(
                or_(Delivery.endpoint_id.is_(None), Delivery.endpoint_id.not_in(skip_endpoints))
            )
        if skip_email:
            query = query.where(Delivery.channel != "email")
        rows = await self._session.execute(
            query.order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(of=Delivery, skip_locked=True)
        )
        return [DueDelivery(*row) for row in rows]

    async def lease(self, ids: Sequence[str], until: datetime) -> None:
        if ids:
            await self._session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(locked_until=until)
                .execution_options(synchronize_session=False)
            )

    async def recoverable(
        self, tenant_id: str, endpoint_id: str, since: datetime, limit: int
    ) -> list[Delivery]:
        rows = await self._session.execute(
            select(Delivery)
            .where(
                Delivery.tenant_id == tenant_id,
                Delivery.endpoint_id == endpoint_id,
                Delivery.created_at >= since,
                Delivery.status.in_([FAILED, CANCELLED]),
            )
            .order_by(Delivery.created_at)
            .limit(limit)
        )
        return list(rows.scalars())

    async def supersede(self, ids: Sequence[str], now: datetime) -> None:
        if ids:
            await self._session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status.in_([FAILED, CANCELLED]))
                .values(status=SUPERSEDED, updated_at=now)
            )


def _status_clause(status: str) -> Any:
    """A message's status is its deliveries': pending while any is, failed if any failed."""

    def having(*statuses: str) -> Any:
        return exists().where(Delivery.message_id == Message.id, Delivery.status.in_(statuses))

    if status == PENDING:
        return having(PENDING)
    if status == FAILED:
        return and_(having(FAILED, CANCELLED), ~having(PENDING))
    if status == SUCCEEDED:
        return and_(having(SUCCEEDED), ~having(PENDING, FAILED, CANCELLED))
    return ~having(PENDING, SUCCEEDED, FAILED, CANCELLED, SUPERSEDED)  # "unrouted"


class DeliveryOutcomes:
    """What an attempt's outcome writes, as prebuilt Core statements on a plain connection.

    Synchronous on purpose: the outcome recorder runs its whole transaction as
    one function with ``Database.run_core`` (SQLAlchemy's greenlet entered once,
    not at every statement), and the operator's paths reach the same
    statements inside their session through ``NotificationsRepository.run_core``.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def delivery_progress(self, ids: Sequence[str]) -> dict[str, DeliveryProgress]:
        """Where these deliveries stand, read fresh (plain rows: the outcome writer's input)."""
        if not ids:
            return {}
        rows = self.connection.execute(_DELIVERY_PROGRESS, {"ids": list(set(ids))})
        return {row.id: DeliveryProgress(**row._mapping) for row in rows}

    def record_attempts(
        self, attempts: list[dict[str, Any]], progress: list[DeliveryProgress], now: datetime
    ) -> None:
        """Insert attempt rows and write each delivery's new state, one statement each."""
        if attempts:
            self.connection.execute(_INSERT_ATTEMPT, attempts)
        if progress:
            self.connection.execute(
                _ADVANCE_DELIVERY,
                [
                    {
                        "delivery_id": item.id,
                        "new_status": item.status,
                        "new_attempts": item.attempts,
                        "new_next_attempt_at": item.next_attempt_at,
                        "new_last_status_code": item.last_status_code,
                        "new_last_error": item.last_error,
                        "new_updated_at": now,
                    }
                    for item in progress
                ],
            )

    def mark_failing(self, endpoint_id: str, now: datetime) -> None:
        self._endpoints_changed(
            self.connection.execute(_MARK_FAILING, {"target_endpoint_id": endpoint_id, "now": now})
        )

    def clear_failing(self, endpoint_id: str) -> None:
        self._endpoints_changed(
            self.connection.execute(_CLEAR_FAILING, {"target_endpoint_id": endpoint_id})
        )

    def disable_endpoint(self, endpoint_id: str, reason: str, now: datetime) -> bool:
        """Disable once: True only for the caller that actually switched it off."""
        result = self.connection.execute(
            _DISABLE_ENDPOINT, {"target_endpoint_id": endpoint_id, "reason": reason, "now": now}
        )
        self._endpoints_changed(result)
        return _rowcount(result) == 1

    def cancel_pending(self, endpoint_id: str, reason: str, now: datetime) -> int:
        """Cancel what an endpoint still owes; the number of deliveries cancelled."""
        result = self.connection.execute(
            _CANCEL_PENDING, {"target_endpoint_id": endpoint_id, "reason": reason, "now": now}
        )
        return _rowcount(result)

    def _endpoints_changed(self, result: Any) -> None:
        """Endpoints changed: routing caches of every replica must read them again."""
        if _rowcount(result):
            self.connection.execute(BUMP_ROUTING_VERSION)


class MessageIntake:
    """What intake reads and writes for a batch, on a plain connection.

    Synchronous Core statements: intake runs the batch's transaction as one
    function with ``Database.run_core`` (SQLAlchemy's greenlet entered once).
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def existing_message_ids(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        rows = self.connection.execute(_MESSAGES_KNOWN, {"ids": list(set(ids))})
        return set(rows.scalars())

    def routing_version(self) -> int:
        """The version of endpoints and email rules (see ``services.notifications.routing``)."""
        return int(self.connection.execute(_ROUTING_VERSION).scalar_one())

    def tenant_endpoints(self, tenant_ids: Sequence[str]) -> dict[str, list[Endpoint]]:
        """Every endpoint of these tenants, detached (read when the routing cache is stale).

        ORM objects from a session of their own on this connection's transaction;
        ``NotificationsRepository.tenant_endpoints`` (the replay path) reads them here too.
        """
        if not tenant_ids:
            return {}
        with Session(bind=self.connection) as session:
            endpoints = list(
                session.scalars(_ENDPOINTS_OF_TENANTS, {"tenants": list(set(tenant_ids))})
            )
            session.expunge_all()
        found: dict[str, list[Endpoint]] = {tenant: [] for tenant in tenant_ids}
        for endpoint in endpoints:
            found[endpoint.tenant_id].append(endpoint)
        return found

    def insert_many(self, model: Any, rows: list[dict[str, Any]]) -> None:
        """One multi-row INSERT through the table, bypassing the ORM's unit of work."""
        if rows:
            self.connection.execute(_INSERT_INTO[model], rows)
