"""The transaction every change to one goal's timeline runs in, shared by the goal services.

It locks the goal's row, fires whatever of that goal is already due (so a
request that arrives before the scheduler noticed a deadline still comes
after the events of that deadline), lets the caller change things, then
writes the planned timers and the events in the same transaction and wakes
the scheduler when timers changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from services.sessions.repository import SessionsRepository
from services.sessions.timers.firing import catch_up
from services.sessions.timers.planner import GoalContext, Planner, Rules
from services.sessions.timers.repository import TimerRepository
from shared import metrics
from shared.clock import Clock
from shared.http.problems import ProblemError
from shared.runtime import ServiceRuntime

CLOSED_STATUSES = ("draft", "completed", "abandoned")


def not_found(goal_id: str) -> ProblemError:
    return ProblemError(404, f"goal {goal_id} not found", slug="not-found")


def field_problem(status: int, field: str, message: str, *, slug: str) -> ProblemError:
    return ProblemError(
        status, f"{field}: {message}", slug=slug, errors=[{"field": field, "message": message}]
    )


class GoalTimeline:
    """What the goal-level services share: clock, rules, the locked-goal transaction."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        clock: Clock,
        rules: Rules,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = runtime.database
        self._outbox = runtime.outbox
        self._clock = clock
        self.rules = rules
        self._wake = wake

    def now(self) -> datetime:
        return self._clock.now()

    @asynccontextmanager
    async def change(
        self, tenant_id: str, goal_id: str, *, now: datetime | None = None
    ) -> AsyncIterator[tuple[Planner, GoalContext]]:
        """A transaction holding the goal's lock, with everything already due fired first."""
        moment = now or self.now()
        async with self._db.transaction() as session:
            planner = Planner(
                SessionsRepository(session), TimerRepository(session), self.rules, moment
            )
            row = await planner.repo.goal(tenant_id, goal_id, for_update=True)
            if row is None:
                raise not_found(goal_id)
            goal = GoalContext.of(row)
            fired = await catch_up(planner, goal, by="api")
            yield planner, goal
            await planner.flush()
            await self._outbox.add(session, planner.events)
        for timers, late in ((fired.on_time, "false"), (fired.late, "true")):
            for timer in timers:
                metrics.TIMERS_FIRED.labels("sessions", timer.kind, late).inc()
        if planner.timers_changed:
            self._wake()
