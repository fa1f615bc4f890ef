"""The milestone-overdue timer: ``milestone.overdue`` once, when a due date passes uncompleted.

A milestone due on a date becomes overdue at the midnight that ends that
date in the goal's time zone (``overdue_at``, kept on the row and recomputed
when the due date or the zone changes). Only active goals fire: a paused or
draft goal's overdue milestones wait, and fire once the goal is active again
if they are still pending then. Moving the due date re-arms the timer.

Any number of replicas may run this loop against one PostgreSQL database:
each pass locks the goals it works on with ``FOR UPDATE SKIP LOCKED`` (so
replicas split the work instead of queueing) and claims each milestone with
a conditional UPDATE, so a milestone is announced exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from services.goals import milestones
from services.goals.models import Milestone
from services.goals.service import GoalsService
from shared import metrics, tracing
from shared.clock import Clock
from shared.db.database import is_unavailable
from shared.logs import get_logger

log = get_logger(__name__)
KIND = "milestone_overdue"
_NO_SPAN = contextlib.nullcontext()  # while tracing is off (reusable)


class OverdueTimer:
    def __init__(
        self,
        service: GoalsService,
        clock: Clock,
        *,
        poll_seconds: float = 30.0,
        batch_size: int = 100,
    ) -> None:
        self._service = service
        self._clock = clock
        self._poll = poll_seconds
        self._batch = batch_size
        self.wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_pass = clock.now()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="goals:overdue-timer")

    async def stop(self) -> None:
        self._stopping.set()
        self.wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            self.wake.clear()
            try:
                while await self.fire_due() >= self._batch:
                    pass  # a full batch: there may be more due right now
                backoff = 0.5
            except Exception as error:
                level = "warning" if is_unavailable(error) else "error"
                getattr(log, level)("goals.overdue.failed", error=repr(error), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            await self._idle()

    async def _idle(self) -> None:
        """Until the clock is a poll interval past the last pass, or a change woke us.

        Measured from the instant the last pass looked at, not from now: if the
        clock moved on while a pass ran, the next pass must not wait a whole
        interval more.
        """
        elapsed = (self._clock.now() - self._last_pass).total_seconds()
        if elapsed >= self._poll:
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(self._poll - elapsed))
        woken = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeper, woken):
                waiter.cancel()
            await asyncio.gather(sleeper, woken, return_exceptions=True)

    async def fire_due(self) -> int:
        """One pass: announce up to a batch of goals' overdue milestones; returns goals seen."""
        fired = 0
        async with self._service.work() as work:
            now = self._last_pass = work.now
            repository = work.repository
            states = await repository.lock_goals_with_overdue(now, limit=self._batch)
            for state in states:
                for milestone in list(state.milestones):
                    due = milestone.overdue_at
                    if due is None or due > now or milestone.status != "pending":
                        continue
                    if milestone.overdue_fired_at is not None:
                        continue
                    if not await repository.claim_overdue(milestone, now):
                        continue
                    # The announcement continues the chain of the event that set the date.
                    work.correlation_id = milestone.correlation_id
                    work.causation_id = milestone.causation_id
                    late = now - due > timedelta(seconds=self._poll * 2)
                    with (
                        _firing_span(state.goal.id, milestone, late)
                        if tracing.enabled
                        else _NO_SPAN
                    ):
                        milestones.fire_overdue(state, milestone, now=now, emit=work.emit)
                    fired += 1
                    metrics.TIMERS_FIRED.labels("goals", KIND, str(late).lower()).inc()
                    log.info(
                        "goals.milestone.overdue",
                        goal_id=state.goal.id,
                        milestone_id=milestone.id,
                        tenant_id=state.goal.tenant_id,
                        overdue_at=due.isoformat(),
                        late=late,
                        correlation_id=work.events[-1].correlationid,
                        event_id=work.events[-1].id,
                    )
            oldest = await repository.oldest_overdue(now)
        lag = (now - oldest).total_seconds() if oldest is not None else 0.0
        metrics.SCHEDULER_LAG.labels("goals", KIND).set(max(lag, 0.0))
        return len(states)


def _firing_span(
    goal_id: str, milestone: Milestone, late: bool
) -> contextlib.AbstractContextManager[object]:
    """The firing's span, in the scheduler's trace, linked to the change that set the date."""
    from shared.tracing.spans import span

    return span(
        f"fire {KIND}",
        link=milestone.traceparent,
        attributes={
            "followthrough.timer.kind": KIND,
            "followthrough.timer.due_at": milestone.overdue_at.isoformat()
            if milestone.overdue_at
            else "",
            "followthrough.timer.late": late,
            "followthrough.goal_id": goal_id,
            "followthrough.milestone_id": milestone.id,
            "followthrough.tenant_id": milestone.tenant_id,
            "followthrough.correlation_id": milestone.correlation_id or "",
        },
    )
