"""The background purger: deletes what is past its window, in small batches, in one replica.

Every ``RETENTION_PURGE_SECONDS`` the replica holding the leadership lock
(``shared/db/leader.py``; on SQLite the single process) walks the rules: for
each kind, the rows of tenants on the default window, then each tenant with
its own, oldest first, ``RETENTION_BATCH_SIZE`` rows per short transaction, so
no write lock is held for long and the request and consumer paths only ever
wait for one small batch. Every replica reports the oldest row's age.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, select, tuple_

from shared.clock import Clock
from shared.db.database import Database
from shared.db.leader import Leadership
from shared.logs import get_logger
from shared.metrics import RETENTION_OLDEST_AGE, RETENTION_PURGED
from shared.retention.rules import RetentionRule
from shared.retention.store import RetentionStore

log = get_logger(__name__)


class RetentionPurger:
    def __init__(
        self,
        database: Database,
        store: RetentionStore,
        clock: Clock,
        *,
        service: str,
        every_seconds: float = 60.0,
        batch_size: int = 500,
        pause_seconds: float = 0.01,
        enabled: bool = True,
    ) -> None:
        self._db = database
        self.store = store
        self._clock = clock
        self._service = service
        self._every = every_seconds
        self._batch = batch_size
        self._pause = pause_seconds
        self._enabled = enabled
        self._leadership = Leadership(database, f"{service}.retention")
        self._task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    def start(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._leadership.release()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("retention.round_failed", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._every)
            self.wake.clear()

    async def run_once(self) -> dict[str, int]:
        """One round: purge (when leading) and refresh the age gauges; rows purged by kind."""
        purged: dict[str, int] = {}
        if await self._leadership.acquire():
            overrides = await self.store.overrides()
            for kind, rule in sorted(self.store.rules.items()):
                purged[kind] = await self._purge_rule(rule, overrides.get(kind, {}))
                if purged[kind]:
                    RETENTION_PURGED.labels(self._service, kind).inc(purged[kind])
                    log.info("retention.purged", kind=kind, rows=purged[kind])
        await self._refresh_ages()
        return purged

    async def _purge_rule(self, rule: RetentionRule, tenants: dict[str, timedelta]) -> int:
        now = self._clock.now()
        if rule.tenant is None or not tenants:
            return await self._purge(rule, now - self.store.default(rule), None)
        rest = rule.tenant.not_in(sorted(tenants))
        total = await self._purge(rule, now - self.store.default(rule), rest)
        for tenant, window in sorted(tenants.items()):
            cutoff = now - self.store.floored(rule, window)
            total += await self._purge(rule, cutoff, rule.tenant == tenant)
        return total

    async def _purge(
        self, rule: RetentionRule, cutoff: datetime, scope: ColumnElement[bool] | None
    ) -> int:
        conditions = [rule.age < cutoff]
        if rule.only is not None:
            conditions.append(rule.only())
        if scope is not None:
            conditions.append(scope)
        keys = rule.keys
        total = 0
        while True:
            chosen = select(*keys).where(and_(*conditions)).order_by(rule.age).limit(self._batch)
            target = keys[0].in_(chosen) if len(keys) == 1 else tuple_(*keys).in_(chosen)
            async with self._db.transaction() as session:
                result = await session.execute(delete(rule.table).where(target))
            count = int(getattr(result, "rowcount", 0) or 0)
            total += count
            if count < self._batch:
                return total
            await asyncio.sleep(self._pause)  # let the request and consumer paths in

    async def _refresh_ages(self) -> None:
        now = self._clock.now()
        async with self._db.reader() as session:
            for kind, rule in self.store.rules.items():
                query = select(func.min(rule.age))
                if rule.only is not None:
                    query = query.where(rule.only())
                oldest = await session.scalar(query)
                age = (now - oldest).total_seconds() if isinstance(oldest, datetime) else 0.0
                RETENTION_OLDEST_AGE.labels(self._service, kind).set(max(age, 0.0))


__all__ = ["RetentionPurger", "timedelta"]
