"""Goals' retention, on SQLite and PostgreSQL: a closed goal's history goes after its window.

An open goal keeps its whole history however old; a completed one loses the
events older than the window (a year by default, or the tenant's own).
"""

from __future__ import annotations

from datetime import timedelta

from tests.services.goals.fixtures import GoalsApi


async def test_closed_goal_history_is_purged_after_its_window_open_goal_keeps_it(
    goals: GoalsApi,
) -> None:
    closed = await goals.create(status="active")
    kept = await goals.create(status="active")
    completed = await goals.http.post(f"/v1/goals/{closed['id']}/complete")
    assert completed.status_code == 200, completed.text

    async def history(goal_id: str) -> list[dict[str, object]]:
        answer = await goals.http.get(f"/v1/goals/{goal_id}/events")
        assert answer.status_code == 200, answer.text
        items: list[dict[str, object]] = answer.json()["items"]
        return items

    closed_before = await history(closed["id"])
    kept_before = await history(kept["id"])
    assert len(closed_before) >= 2
    purger = goals.app.state.retention

    await goals.clock.advance(timedelta(days=300))  # inside the year: nothing goes
    assert (await purger.run_once())["goal_history"] == 0

    await goals.clock.advance(timedelta(days=66))
    assert (await purger.run_once())["goal_history"] == len(closed_before)
    assert await history(closed["id"]) == []
    # The open goal keeps all of it (its milestone may have become overdue meanwhile).
    assert (await history(kept["id"]))[: len(kept_before)] == kept_before
    # The goal itself is live state, never purged by the history rule.
    assert (await goals.http.get(f"/v1/goals/{closed['id']}")).status_code == 200
