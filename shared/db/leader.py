"""Leadership by database lock, for work that must run in exactly one replica at a time.

On PostgreSQL a session-level advisory lock is held on a dedicated
connection: if the leader's process dies its connection closes, the lock is
released, and a standby takes over on its next try. SQLite deployments are a
single process, which is always the leader.
"""

from __future__ import annotations

import contextlib
import time
import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db.database import Database
from shared.logs import get_logger

log = get_logger(__name__)
LIVENESS_CHECK_SECONDS = 5.0


class Leadership:
    def __init__(self, database: Database, name: str) -> None:
        self._database = database
        self._name = name
        self._lock_id = zlib.crc32(name.encode()) & 0x7FFFFFFF
        self._connection: AsyncConnection | None = None
        self._checked_at = 0.0

    async def acquire(self) -> bool:
        """Try (without waiting) to become or stay the leader; True while leading."""
        if self._database.is_sqlite:
            return True
        if self._connection is not None:
            if time.monotonic() - self._checked_at < LIVENESS_CHECK_SECONDS:
                return True
            if await self._still_connected():
                return True
            log.warning("leadership.lost", name=self._name)
            await self.release()
        connection = await self._database.engine.connect()
        try:
            result = await connection.execute(
                text("SELECT pg_try_advisory_lock(:id)"), {"id": self._lock_id}
            )
            got = bool(result.scalar())
            await connection.commit()
        except BaseException:
            await connection.close()
            raise
        if not got:
            await connection.close()
            return False
        self._connection = connection
        self._checked_at = time.monotonic()
        log.info("leadership.acquired", name=self._name)
        return True

    async def _still_connected(self) -> bool:
        assert self._connection is not None
        try:
            await self._connection.execute(text("SELECT 1"))
            await self._connection.commit()
        except Exception:
            return False
        self._checked_at = time.monotonic()
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": self._lock_id})
            await connection.commit()
        with contextlib.suppress(Exception):
            await connection.close()
