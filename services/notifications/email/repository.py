"""Every query about email configuration: rules, templates, preferences, unsubscribes, digests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.models import (
    DigestEntry,
    EmailRule,
    EmailTemplate,
    GoalQuietHours,
    Preference,
    Unsubscribe,
)
from shared.db import core

_DIALECT_INSERT: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_RULES_OF_TENANTS = select(EmailRule.tenant_id, EmailRule.event_type, EmailRule.roles).where(
    EmailRule.tenant_id.in_(bindparam("tenants", expanding=True))
)
_QUIET_HOURS_OF_GOALS = select(*GoalQuietHours.__table__.columns).where(
    GoalQuietHours.tenant_id.in_(bindparam("tenants", expanding=True)),
    GoalQuietHours.goal_id.in_(bindparam("goals", expanding=True)),
)

_PREFERENCES_OF = select(*Preference.__table__.columns).where(
    Preference.tenant_id.in_(bindparam("tenants", expanding=True)),
    Preference.email.in_(bindparam("emails", expanding=True)),
)
_UNSUBSCRIBES_OF = select(Unsubscribe.tenant_id, Unsubscribe.email, Unsubscribe.event_type).where(
    Unsubscribe.tenant_id.in_(bindparam("tenants", expanding=True)),
    Unsubscribe.email.in_(bindparam("emails", expanding=True)),
)


def _upsert_quiet_hours(dialect: str) -> Any:
    """Keep the newest version of a goal's quiet hours (events may arrive out of order)."""
    statement = _DIALECT_INSERT[dialect](GoalQuietHours)
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "goal_id"],
        set_={
            "quiet_start": statement.excluded.quiet_start,
            "quiet_end": statement.excluded.quiet_end,
            "version": statement.excluded.version,
            "status": statement.excluded.status,
            "updated_at": statement.excluded.updated_at,
        },
        where=GoalQuietHours.version < statement.excluded.version,
    )


_UPSERT_QUIET_HOURS = {dialect: _upsert_quiet_hours(dialect) for dialect in _DIALECT_INSERT}


def _dialect_key(name: str | None) -> str:
    """Which of the prebuilt ON CONFLICT forms a database of this dialect takes."""
    return "postgresql" if name == "postgresql" else "sqlite"


class EmailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _dialect(self) -> str:
        bind = self._session.bind
        return _dialect_key(bind.dialect.name if bind is not None else None)

    def _insert(self, model: Any) -> Any:
        """INSERT with ON CONFLICT, in the dialect of this session (both have the same API)."""
        return _DIALECT_INSERT[self._dialect()](model)

    # Rules

    async def rules(self, tenant_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        return await core.run_on_connection(
            self._session, lambda connection: EmailLookups(connection).rules(tenant_ids)
        )

    async def rule(self, tenant_id: str, event_type: str) -> EmailRule | None:
        result: EmailRule | None = await self._session.get(EmailRule, (tenant_id, event_type))
        return result

    # Templates

    async def template(self, tenant_id: str, event_type: str) -> EmailTemplate | None:
        result: EmailTemplate | None = await self._session.get(
            EmailTemplate, (tenant_id, event_type)
        )
        return result

    async def templates(self, tenant_id: str) -> list[EmailTemplate]:
        rows = await self._session.execute(
            select(EmailTemplate)
            .where(EmailTemplate.tenant_id == tenant_id)
            .order_by(EmailTemplate.event_type)
        )
        return list(rows.scalars())

    # Preferences and unsubscribes

    async def preference(self, tenant_id: str, email: str) -> Preference | None:
        result: Preference | None = await self._session.get(Preference, (tenant_id, email))
        return result

    async def is_unsubscribed(self, tenant_id: str, email: str, event_type: str) -> bool:
        found = await self._session.get(Unsubscribe, (tenant_id, email, event_type))
        return found is not None

    async def unsubscriptions(self, tenant_id: str, email: str) -> list[str]:
        rows = await self._session.execute(
            select(Unsubscribe.event_type)
            .where(Unsubscribe.tenant_id == tenant_id, Unsubscribe.email == email)
            .order_by(Unsubscribe.event_type)
        )
        return list(rows.scalars())

    async def unsubscribe(self, tenant_id: str, email: str, event_type: str, now: datetime) -> None:
        statement = self._insert(Unsubscribe).values(
            tenant_id=tenant_id, email=email, event_type=event_type, created_at=now
        )
        await self._session.execute(statement.on_conflict_do_nothing())

    async def resubscribe(self, tenant_id: str, email: str, event_types: Sequence[str]) -> None:
        for event_type in event_types:
            found = await self._session.get(Unsubscribe, (tenant_id, email, event_type))
            if found is not None:
                await self._session.delete(found)

    # Digests

    async def digest_recipients(self, limit: int) -> list[Preference]:
        rows = await self._session.execute(
            select(Preference).where(Preference.delivery == "digest").limit(limit)
        )
        return list(rows.scalars())

    async def pending_entries(
        self, tenant_id: str, email: str, before: datetime
    ) -> list[DigestEntry]:
        rows = await self._session.execute(
            select(DigestEntry)
            .where(
                DigestEntry.tenant_id == tenant_id,
                DigestEntry.email == email,
                DigestEntry.digest_id.is_(None),
                DigestEntry.occurred_at < before,
            )
            .order_by(DigestEntry.occurred_at, DigestEntry.id)
        )
        return list(rows.scalars())

    async def mark_digested(self, ids: Sequence[int], digest_id: str) -> None:
        if ids:
            await self._session.execute(
                update(DigestEntry).where(DigestEntry.id.in_(ids)).values(digest_id=digest_id)
            )

    async def advance_digest(
        self, tenant_id: str, email: str, previous: datetime | None, moment: datetime
    ) -> bool:
        """Move a recipient's last digest time on, once: False if another replica did it first."""
        condition = (
            Preference.last_digest_at.is_(None)
            if previous is None
            else Preference.last_digest_at == previous
        )
        result = await self._session.execute(
            update(Preference)
            .where(Preference.tenant_id == tenant_id, Preference.email == email, condition)
            .values(last_digest_at=moment)
        )
        return bool(getattr(result, "rowcount", 0))


def _bound_lists(pairs: set[tuple[str, str]], second: str) -> dict[str, list[str]]:
    """The expanding lists of a lookup by (tenant, key) pairs: every tenant and every key.

    The rows found may pair a tenant with another's key; callers keep the pairs they asked.
    """
    return {"tenants": list({tenant for tenant, _ in pairs}), second: list({k for _, k in pairs})}


class EmailLookups:
    """Intake's per-batch reads of email configuration, and its quiet-hours projection.

    Synchronous Core statements on a plain connection: intake runs its whole
    batch transaction as one function with ``Database.run_core``; the async
    ``EmailRepository.rules`` reaches the same statement through its session.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def rules(self, tenant_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        found: dict[str, dict[str, list[str]]] = {tenant: {} for tenant in tenant_ids}
        if not tenant_ids:
            return found
        rows = self.connection.execute(_RULES_OF_TENANTS, {"tenants": list(found)})
        for row in rows:
            found[row.tenant_id][row.event_type] = list(row.roles)
        return found

    def preferences(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], Preference]:
        """The preferences of these people (transient objects: read, never written through)."""
        if not pairs:
            return {}
        rows = self.connection.execute(_PREFERENCES_OF, _bound_lists(pairs, "emails"))
        found = (Preference(**row._mapping) for row in rows)
        return {(p.tenant_id, p.email): p for p in found}

    def unsubscribed(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str, str]]:
        if not pairs:
            return set()
        rows = self.connection.execute(_UNSUBSCRIBES_OF, _bound_lists(pairs, "emails"))
        return {(row.tenant_id, row.email, row.event_type) for row in rows}

    # Goal quiet hours (a projection of goal events)

    def quiet_hours(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], GoalQuietHours]:
        if not keys:
            return {}
        rows = self.connection.execute(_QUIET_HOURS_OF_GOALS, _bound_lists(keys, "goals"))
        found = (GoalQuietHours(**row._mapping) for row in rows)
        return {(q.tenant_id, q.goal_id): q for q in found if (q.tenant_id, q.goal_id) in keys}

    def upsert_quiet_hours(self, rows: Sequence[dict[str, Any]]) -> None:
        """Keep the newest version of goals' quiet hours (events may arrive out of order).

        ``rows`` carry tenant_id, goal_id, quiet_start, quiet_end, version,
        status and updated_at; one statement for all of them.
        """
        if rows:
            dialect = _dialect_key(self.connection.dialect.name)
            self.connection.execute(_UPSERT_QUIET_HOURS[dialect], list(rows))
