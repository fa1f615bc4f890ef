"""The scheduler: fires due timers, exactly once, on any number of replicas.

One pass claims up to a batch of due, unfired timers in due order (an
indexed range scan over unfired rows only, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so replicas take different rows), locks their goals (again
skipping goals someone else holds: those timers wait for the next pass),
fires them, marks them fired and writes the events to the outbox, all in one
transaction. Either everything of a pass commits or none of it does, so a
crash can only make a timer fire later, never twice and never not at all.

After downtime the first passes find everything that came due meanwhile and
fire it with ``late`` set in the reasoning; firing a miss plans the next
occurrence, and when that is already due too the next pass fires it, so a
long outage is replayed in order.

Between passes the loop sleeps until the next timer is due by the injected
clock (a ``ManualClock`` wakes it as soon as a test moves time past it), or
until something in this process planned new timers, or for at most
``scheduler_poll_seconds`` of real time so other replicas' plans are seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from services.sessions.models import Timer
from services.sessions.repository import SessionsRepository
from services.sessions.settings import SessionsSettings
from services.sessions.timers.firing import Fired, fire_claimed
from services.sessions.timers.planner import (
    DUE_SOON,
    ESCALATED,
    MISSED,
    SESSION_REMINDER,
    GoalContext,
    Planner,
    Rules,
)
from services.sessions.timers.repository import TimerRepository
from shared import metrics, tracing
from shared.clock import Clock
from shared.db.database import Database, is_unavailable
from shared.logs import get_logger
from shared.outbox.writer import Outbox

log = get_logger(__name__)
_NO_SPAN = contextlib.nullcontext()  # while tracing is off (reusable)

KINDS = (DUE_SOON, MISSED, ESCALATED, SESSION_REMINDER)
LAG_REFRESH_SECONDS = 5.0
PURGE_EVERY_SECONDS = 600.0
BUSY_RETRY_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 10.0


class Scheduler:
    def __init__(
        self,
        *,
        database: Database,
        outbox: Outbox,
        clock: Clock,
        settings: SessionsSettings,
        service: str = "sessions",
    ) -> None:
        self._db = database
        self._outbox = outbox
        self._clock = clock
        self._rules = Rules.from_settings(settings)
        self._batch = settings.scheduler_batch_size
        self._poll = settings.scheduler_poll_seconds
        self._retention = timedelta(days=settings.timer_retention_days)
        self._service = service
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._state = asyncio.Condition()
        self._lag_at = 0.0
        self._purged_at = time.monotonic()
        self.caught_up_to: datetime | None = None
        """Clock time of the last pass that found nothing due."""
        self._passes = 0
        self._idle_pass = 0
        self.next_due: datetime | None = None
        self.fired_total = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"scheduler:{self._service}")

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        """Something planned or moved timers: look again now instead of at the old due time."""
        self._wake.set()

    async def wait_caught_up(self, moment: datetime, timeout: float = 30.0) -> None:
        """Wait for a pass begun after this call, at or after ``moment``, that found nothing due.

        Tests and tools use it to step a ``ManualClock`` through a schedule;
        ``next_due`` is fresh when it returns.
        """
        started = self._passes
        self.wake()
        async with asyncio.timeout(timeout), self._state:
            await self._state.wait_for(
                lambda: (
                    self._idle_pass > started
                    and self.caught_up_to is not None
                    and self.caught_up_to >= moment
                )
            )

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            self._wake.clear()
            self._passes += 1
            this_pass = self._passes
            now = self._clock.now()
            try:
                claimed, fired = await self.run_once(now)
                if fired:
                    backoff = 0.1
                    continue
                next_due = await self._idle_bookkeeping(now, claimed, this_pass)
                backoff = 0.1
            except Exception as error:
                if is_unavailable(error):
                    log.warning("sessions.scheduler.failed", error=repr(error), retry_in=backoff)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                log.error("sessions.scheduler.pass_failed", error=repr(error))
                await self._isolate(now)
                continue
            await self._wait(next_due, now)

    async def _isolate(self, now: datetime) -> None:
        """A pass failed for a reason of its own: fire one timer at a time to find the culprit.

        A timer that fails alone is taken out of the due set (``fired_by`` is
        ``failed:<error>``, logged as ``sessions.timer.failed``) so one bad row
        can never stop every other goal's reminders; an outage is retried.
        """
        try:
            async with self._db.reader() as session:
                ids = await TimerRepository(session).due_ids(now, self._batch)
            for timer_id in ids:
                try:
                    await self.run_once(now, only=[timer_id])
                except Exception as error:
                    if is_unavailable(error):
                        raise
                    log.error(
                        "sessions.timer.failed",
                        timer=timer_id,
                        error=repr(error),
                        exc_info=(type(error), error, error.__traceback__),
                    )
                    async with self._db.transaction() as session:
                        await TimerRepository(session).mark_failed(
                            timer_id, now=now, reason=type(error).__name__
                        )
        except Exception as error:
            log.warning("sessions.scheduler.isolate_failed", error=repr(error))
            await self._pause(1.0)

    async def run_once(self, now: datetime, *, only: list[str] | None = None) -> tuple[int, int]:
        """One pass: claim, fire, mark and write events in one transaction; (claimed, fired)."""
        began = time.perf_counter()
        async with self._db.transaction() as session:
            planner = Planner(
                SessionsRepository(session), TimerRepository(session), self._rules, now
            )
            claimed = await planner.timers.claim_due(now, self._batch, only=only)
            if not claimed:
                return 0, 0
            with self._pass_span(began, claimed) if tracing.enabled else _NO_SPAN:
                rows = await planner.repo.goals_for_update(
                    (timer.goal_id for timer in claimed), skip_locked=True
                )
                missing = {timer.goal_id for timer in claimed} - rows.keys()
                if missing:
                    await self._set_aside_orphans(planner, claimed, missing, now)
                goals = {goal_id: GoalContext.of(row) for goal_id, row in rows.items()}
                fired = await fire_claimed(planner, claimed, goals, by=self.replica)
                await self._outbox.add(session, planner.events)
        self._count(fired)
        if fired.count:
            log.info(
                "sessions.scheduler.pass",
                claimed=len(claimed),
                fired=fired.count,
                late=len(fired.late),
                skipped=fired.skipped,
                events=len(planner.events),
                duration_ms=round((time.perf_counter() - began) * 1000, 1),
            )
        return len(claimed), fired.count

    def _pass_span(
        self, began: float, claimed: Sequence[Timer]
    ) -> contextlib.AbstractContextManager[object]:
        """A pass that fires something is a trace of its own (an idle pass is none)."""
        from shared.tracing.spans import span

        started_ns = time.time_ns() - int((time.perf_counter() - began) * 1e9)
        return span(
            "scheduler pass",
            start_time=started_ns,
            attributes={
                "followthrough.replica": self.replica,
                "followthrough.timers": len(claimed),
            },
        )

    async def _set_aside_orphans(
        self, planner: Planner, claimed: Sequence[Timer], missing: set[str], now: datetime
    ) -> None:
        """Goals passed over are usually locked by someone else; a timer whose goal does not
        exist at all would otherwise be claimed and passed over forever."""
        orphans = missing - await planner.repo.existing_goal_ids(missing)
        for timer in claimed:
            if timer.goal_id in orphans:
                log.error("sessions.timer.failed", timer=timer.id, error="goal not found")
                await planner.timers.mark_failed(timer.id, now=now, reason="orphan")

    def _count(self, fired: Fired) -> None:
        self.fired_total += fired.count
        for timers, late in ((fired.on_time, "false"), (fired.late, "true")):
            for timer in timers:
                metrics.TIMERS_FIRED.labels(self._service, timer.kind, late).inc()

    async def _idle_bookkeeping(
        self, now: datetime, claimed: int, this_pass: int
    ) -> datetime | None:
        async with self._db.reader() as session:
            timers = TimerRepository(session)
            next_due = await timers.next_due_at()
            if time.monotonic() - self._lag_at >= LAG_REFRESH_SECONDS:
                self._lag_at = time.monotonic()
                oldest = await timers.oldest_due_by_kind(now)
                for kind in KINDS:
                    lag = (now - oldest[kind]).total_seconds() if kind in oldest else 0.0
                    metrics.SCHEDULER_LAG.labels(self._service, kind).set(max(0.0, lag))
        if time.monotonic() - self._purged_at >= PURGE_EVERY_SECONDS:
            self._purged_at = time.monotonic()
            async with self._db.transaction() as session:
                purged = await TimerRepository(session).purge_fired(now - self._retention)
            if purged:
                log.info("sessions.scheduler.purged", timers=purged)
        async with self._state:
            self.next_due = next_due
            if claimed == 0:
                self.caught_up_to = now
                self._idle_pass = this_pass
            self._state.notify_all()
        return next_due

    async def _wait(self, next_due: datetime | None, now: datetime) -> None:
        """Until the next due time (by the clock), a wake-up, or the poll interval."""
        timeout = self._poll
        waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(self._wake.wait())]
        if next_due is not None:
            delay = (next_due - now).total_seconds()
            if delay <= 0:
                # Due but held by another replica or a request: look again shortly.
                timeout = min(self._poll, BUSY_RETRY_SECONDS)
            else:
                waiters.append(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
