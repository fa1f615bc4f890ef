"""The tenant's goals ranked by at-risk score (``GET /v1/goals?order=risk``).

The score depends on the moment of asking (silence grows, milestones fall
overdue), so it is not stored: it is computed when asked, from each goal's
projection row, by the same function the events and ``/checkins`` use, so
the ranking and a goal's own page never disagree. That costs one pass over
the tenant's goals per page (an index on tenant and status keeps it to them);
the filter on goal status keeps closed goals out of the way.

Pages are keyset pages over (score descending, goal id): the cursor carries
the last item's score and id. Scores move between pages as time passes, so
a goal whose score changed while paging can appear twice or not at all; the
first page is always exact.
"""

from __future__ import annotations

import base64
import json

from services.sessions.repository import SessionsRepository
from services.sessions.schemas import GoalRiskOut, GoalRiskPage
from services.sessions.timers.planner import GoalContext
from services.sessions.timers.timeline import field_problem
from shared.clock import Clock
from shared.http.problems import ProblemError
from shared.runtime import ServiceRuntime


def encode_cursor(score: int, goal_id: str) -> str:
    raw = json.dumps([score, goal_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, goal_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(score, int) or isinstance(score, bool) or not isinstance(goal_id, str):
            raise ValueError("bad cursor")
        return score, goal_id
    except (ValueError, TypeError, UnicodeDecodeError):
        raise invalid_cursor() from None


def invalid_cursor() -> ProblemError:
    return field_problem(
        422, "query.cursor", "is not a cursor this API issued", slug="validation-error"
    )


class RiskRanking:
    def __init__(self, runtime: ServiceRuntime, *, clock: Clock) -> None:
        self._db = runtime.database
        self._clock = clock

    async def page(
        self, tenant_id: str, *, status: str | None, cursor: str | None, limit: int
    ) -> GoalRiskPage:
        after = decode_cursor(cursor)
        now = self._clock.now()
        async with self._db.reader() as session:
            rows = await SessionsRepository(session).tenant_goals(tenant_id, status=status)
        ranked: list[GoalRiskOut] = []
        for row in rows:
            goal = GoalContext.of(row)
            mentee = next((p.name for p in goal.snapshot.participants if p.role == "mentee"), None)
            ranked.append(
                GoalRiskOut(
                    goal_id=row.goal_id,
                    title=goal.snapshot.title,
                    status=row.status,
                    schedule_state=row.schedule_state,
                    mentee=mentee,
                    risk=goal.risk(now),
                    current_streak=row.current_streak,
                    consecutive_misses=row.consecutive_misses,
                    last_checkin_at=row.last_checkin_at,
                )
            )
        ranked.sort(key=lambda item: (-item.risk.score, item.goal_id))
        if after is not None:
            score, goal_id = after
            ranked = [
                item
                for item in ranked
                if item.risk.score < score or (item.risk.score == score and item.goal_id > goal_id)
            ]
        page = ranked[:limit]
        more = len(ranked) > limit
        next_cursor = encode_cursor(page[-1].risk.score, page[-1].goal_id) if more else None
        return GoalRiskPage(items=page, next_cursor=next_cursor)
