"""An open-loop load generator: sends on a fixed schedule, whatever the answers do.

Each send is started at its scheduled moment; a slow answer never delays the
next send, and latency is measured from the schedule, so coordinated omission
cannot flatter the figures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def open_loop(
    *,
    rate: float,
    duration: float,
    send: Callable[[int, float], Awaitable[None]],
    max_in_flight: int = 2000,
) -> int:
    """Call ``send(i, scheduled_at)`` ``rate`` times a second for ``duration`` seconds."""
    total = int(rate * duration)
    start = time.time() + 0.2
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def one(index: int, scheduled: float) -> None:
        try:
            await send(index, scheduled)
        finally:
            slots.release()

    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        task = asyncio.create_task(one(index, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    return total
