"""Fed by the real goals service: goals created, paused, resumed and re-planned over the goals
API reach the sessions schedule through the broker; both services share one manual clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.goals.app import create_app as create_goals_app
from services.goals.settings import GoalsSettings
from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.events.catalog.sessions import CheckinCompleted, CheckinDueSoon
from tests.services.sessions.support import MENTEE, MENTOR, running_sessions
from tests.support.apps import serving

START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # Sunday, 13:00 in Berlin


def due_times(forecast: dict[str, Any]) -> list[str]:
    return [item["local_time"] for item in forecast["items"] if item["kind"] == "checkin.due"]


async def test_goals_lifecycle_drives_the_schedule(
    settings_for: Callable[..., Any], auth_headers: Callable[..., dict[str, str]]
) -> None:
    clock = ManualClock(START)
    headers = auth_headers()
    goals_app = create_goals_app(settings_for(GoalsSettings), clock=clock)
    sessions_settings = settings_for(SessionsSettings)
    async with (
        serving(goals_app) as goals_url,
        httpx.AsyncClient(base_url=goals_url, timeout=15) as goals,
        running_sessions(sessions_settings, clock, headers) as sessions,
    ):
        created = await goals.post(
            "/v1/goals",
            headers=headers,
            json={
                "title": "Write the thesis",
                "participants": [MENTEE, MENTOR],
                "policy": {
                    "cadence": {"kind": "daily"},
                    "time_of_day": "09:00",
                    "timezone": "Europe/Berlin",
                    "reminder_lead_minutes": [30],
                },
            },
        )
        assert created.status_code == 201, created.text
        goal_id = created.json()["id"]
        await sessions.wait_projected(goal_id)

        async def forecast(days: int) -> dict[str, Any]:
            response = await sessions.http.get(
                f"/v1/goals/{goal_id}/schedule",
                params={"until": (clock.now() + timedelta(days=days)).isoformat()},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            return result

        planned = await forecast(3)
        assert planned["schedule_state"] == "active"
        assert due_times(planned) == [
            "2026-03-02T09:00:00",
            "2026-03-03T09:00:00",
            "2026-03-04T09:00:00",
        ]

        paused = await goals.post(f"/v1/goals/{goal_id}/pause", headers=headers, json={})
        assert paused.status_code == 200, paused.text
        await sessions.wait_projected(goal_id, paused.json()["version"])
        assert (await forecast(3))["items"] == []
        # Two paused days send nothing, and resuming starts from the next day, not the past.
        await sessions.step_to(START + timedelta(days=2))
        assert await sessions.outbox_events() == []
        resumed = await goals.post(f"/v1/goals/{goal_id}/resume", headers=headers, json={})
        assert resumed.status_code == 200, resumed.text
        await sessions.wait_projected(goal_id, resumed.json()["version"])
        assert due_times(await forecast(2)) == ["2026-03-04T09:00:00", "2026-03-05T09:00:00"]

        # A new time of day re-plans the occurrence that is not yet due.
        patched = await goals.patch(
            f"/v1/goals/{goal_id}",
            headers=headers,
            json={
                "policy": {
                    "cadence": {"kind": "daily"},
                    "time_of_day": "18:30",
                    "timezone": "Europe/Berlin",
                    "reminder_lead_minutes": [30],
                }
            },
        )
        assert patched.status_code == 200, patched.text
        await sessions.wait_projected(goal_id, patched.json()["version"])
        assert due_times(await forecast(2)) == ["2026-03-03T18:30:00", "2026-03-04T18:30:00"]

        reminder_at = datetime(2026, 3, 3, 17, tzinfo=UTC)  # 18:00 in Berlin
        await sessions.step_to(reminder_at)
        checked = await sessions.http.post(
            "/v1/checkins",
            json={"goal_id": goal_id, "rating": 5},
            headers={**headers, "X-Correlation-ID": "corr-thesis"},
        )
        assert checked.status_code == 201, checked.text
        assert checked.json()["status"] == "on_time"

        events = await sessions.outbox_events()
        assert [e.type for e in events] == [
            "checkin.due_soon",
            "checkin.completed",
            "streak.updated",
        ]
        reminder, completed = events[0], events[1]
        assert isinstance(reminder, CheckinDueSoon)
        assert reminder.data.goal.title == "Write the thesis"
        assert reminder.data.goal.timezone == "Europe/Berlin"
        assert [p.role for p in reminder.data.goal.participants] == ["mentee", "mentor"]
        assert isinstance(completed, CheckinCompleted)
        assert completed.correlationid == "corr-thesis"
