"""Tenants' retention windows (``retention_settings``) and what each kind's window is now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from shared.db.database import Database
from shared.db.tables import retention_settings
from shared.events.envelope import utc_now
from shared.http.problems import ProblemError
from shared.retention.rules import RetentionRule

MAXIMUM = timedelta(days=3650)


@dataclass(frozen=True)
class Window:
    rule: RetentionRule
    default: timedelta
    tenant: timedelta | None

    @property
    def effective(self) -> timedelta:
        return self.tenant if self.tenant is not None else self.default


class RetentionStore:
    def __init__(
        self,
        database: Database,
        rules: Sequence[RetentionRule],
        deployment: Mapping[str, int] | None = None,
        *,
        floors: bool = True,
    ) -> None:
        self._db = database
        self._floors = floors
        self.rules = {rule.kind: rule for rule in rules}
        # One RETENTION_SECONDS may be given to every service (FOLLOWTHROUGH_…): each takes
        # the kinds it has and leaves the others' alone.
        self._deployment = {
            k: timedelta(seconds=v) for k, v in (deployment or {}).items() if k in self.rules
        }

    def default(self, rule: RetentionRule) -> timedelta:
        return self.floored(rule, self._deployment.get(rule.kind, rule.default))

    def floored(self, rule: RetentionRule, window: timedelta) -> timedelta:
        return max(window, rule.minimum) if self._floors else window

    async def overrides(self) -> dict[str, dict[str, timedelta]]:
        """kind -> tenant -> window, for every tenant that set one."""
        async with self._db.reader() as session:
            rows = await session.execute(select(retention_settings))
        found: dict[str, dict[str, timedelta]] = {}
        for row in rows.mappings():
            found.setdefault(row["kind"], {})[row["tenant_id"]] = timedelta(seconds=row["seconds"])
        return found

    async def windows(self, tenant_id: str) -> list[Window]:
        async with self._db.reader() as session:
            rows = await session.execute(
                select(retention_settings.c.kind, retention_settings.c.seconds).where(
                    retention_settings.c.tenant_id == tenant_id
                )
            )
            own = {str(kind): timedelta(seconds=int(s)) for kind, s in rows.all()}
        return [
            Window(rule, self.default(rule), own.get(kind) if rule.per_tenant else None)
            for kind, rule in sorted(self.rules.items())
        ]

    async def set(self, tenant_id: str, changes: Mapping[str, int | None]) -> None:
        """Set (seconds) or reset (None) a tenant's windows; 422 naming any bad kind or value."""
        errors = []
        for kind, seconds in changes.items():
            rule = self.rules.get(kind)
            field = f"body.windows.{kind}"
            if rule is None:
                errors.append({"field": field, "message": "unknown kind of record"})
            elif not rule.per_tenant:
                errors.append(
                    {"field": field, "message": "deployment-wide: no tenant may change it"}
                )
            elif seconds is not None and not (
                rule.minimum.total_seconds() <= seconds <= MAXIMUM.total_seconds()
            ):
                errors.append(
                    {
                        "field": field,
                        "message": f"must be between {int(rule.minimum.total_seconds())} and "
                        f"{int(MAXIMUM.total_seconds())} seconds",
                    }
                )
        if errors:
            raise ProblemError(
                422, "retention windows refused", slug="validation-error", errors=errors
            )
        now = utc_now()
        async with self._db.transaction() as session:
            kinds = sorted(changes)
            await session.execute(
                delete(retention_settings).where(
                    retention_settings.c.tenant_id == tenant_id,
                    retention_settings.c.kind.in_(kinds),
                )
            )
            rows = [
                {"tenant_id": tenant_id, "kind": k, "seconds": int(s), "updated_at": now}
                for k, s in changes.items()
                if s is not None
            ]
            if rows:
                await session.execute(retention_settings.insert(), rows)
