"""ManualClock: sleepers wake when the clock passes their deadline, fixed when sleep was called."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock, SystemClock

START = datetime(2030, 1, 1, tzinfo=UTC)


async def test_a_sleeper_wakes_when_the_clock_reaches_its_deadline() -> None:
    clock = ManualClock(START)
    sleeper = asyncio.ensure_future(clock.sleep(60))
    await clock.advance(timedelta(seconds=59))
    await asyncio.sleep(0)
    assert not sleeper.done()
    await clock.advance(timedelta(seconds=1))
    await asyncio.wait_for(sleeper, 5)


async def test_the_deadline_is_taken_when_sleep_is_called_not_when_the_task_first_runs() -> None:
    clock = ManualClock(START)
    sleeper = asyncio.ensure_future(clock.sleep(60))  # not started yet
    await clock.set(START + timedelta(days=3))  # moves before the sleeper's first step
    await asyncio.wait_for(sleeper, 5)


async def test_time_does_not_go_backwards_and_needs_a_zone() -> None:
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="backwards"):
        await clock.set(START - timedelta(seconds=1))
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2030, 1, 1))


def test_the_system_clock_is_aware_utc() -> None:
    assert SystemClock().now().tzinfo == UTC
