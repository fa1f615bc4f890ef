"""A programmable consumer handler and helpers for testing the consumer runner against a broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY

from shared.db.database import DatabaseUnavailableError
from shared.kafka.consumed import ConsumedEvent, PermanentHandlerError
from shared.kafka.consumer import ConsumerRunner


@dataclass
class RecordingHandler:
    """Behaves like a transactional handler: a batch's events count as handled only if it returns.

    ``unavailable`` makes the handler raise an infrastructure error (the
    database is away) that many times; ``broken`` ids always raise a plain
    error; ``permanent`` ids raise :class:`PermanentHandlerError`; a batch
    containing a ``hold`` id waits until ``release`` is set.
    """

    unavailable: int = 0
    broken: set[str] = field(default_factory=set)
    permanent: set[str] = field(default_factory=set)
    hold: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    handled: list[str] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    failures: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, batch: Sequence[ConsumedEvent]) -> None:
        ids = [item.event.id for item in batch]
        async with self.changed:
            self.calls.append(ids)
            self.changed.notify_all()
        if self.hold & set(ids):
            await self.release.wait()
        try:
            if self.unavailable > 0:
                self.unavailable -= 1
                raise DatabaseUnavailableError("database is away")
            if self.permanent & set(ids):
                raise PermanentHandlerError("this event can never be handled")
            if self.broken & set(ids):
                raise ValueError("this handler cannot cope with that event")
        except Exception:
            async with self.changed:
                self.failures += 1
                self.changed.notify_all()
            raise
        async with self.changed:
            self.handled.extend(ids)
            self.changed.notify_all()

    async def wait(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(condition)

    async def wait_handled(self, ids: Sequence[str], timeout: float = 30.0) -> None:
        await self.wait(lambda: set(ids) <= set(self.handled), timeout)

    def attempts_alone(self, event_id: str) -> int:
        """How often the handler was called with this event on its own."""
        return sum(1 for call in self.calls if call == [event_id])

    def duplicates(self) -> list[str]:
        return [event_id for event_id, n in Counter(self.handled).items() if n > 1]


@contextlib.asynccontextmanager
async def running(runner: ConsumerRunner) -> AsyncIterator[ConsumerRunner]:
    """Start the runner; stop it (finish, commit, leave the group) on the way out."""
    runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def metric(name: str, **labels: str) -> float | None:
    """A sample of the process's Prometheus registry, or None when absent."""
    return REGISTRY.get_sample_value(name, labels)
