"""Time as a dependency, so schedulers and retry logic can be driven through months in seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; sleepers wake when time passes their deadline."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def advance(self, delta: timedelta) -> None:
        await self.set(self._now + delta)

    async def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("time does not go backwards")
        self._now = moment.astimezone(UTC)
        async with self._moved:
            self._moved.notify_all()

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        """Sleep until ``seconds`` after the moment of the call.

        The deadline is taken when ``sleep`` is called, not when the coroutine
        first runs: a sleeper wrapped in a task starts later, and if the clock
        moved meanwhile it would otherwise wait from the new time and miss it.
        """
        return self._sleep_until(self._now + timedelta(seconds=seconds))

    async def _sleep_until(self, deadline: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= deadline)
