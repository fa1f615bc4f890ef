"""Coaching sessions (scheduled, reminded, held / no-show / cancelled) and the signed email
links (GET changes nothing, POST acts, bad links answer 4xx), over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sessions.settings import SessionsSettings
from shared.auth.links import sign_link
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.events.catalog.goals import GoalPaused
from shared.events.catalog.sessions import (
    CheckinAcknowledged,
    CheckinCompleted,
    SessionCancelled,
    SessionHeld,
    SessionNoShow,
    SessionReminder,
    SessionScheduled,
)
from tests.services.sessions.support import (
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    weekly,
)

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
SECRET = "test-link-secret-0123456789abcdef"


async def test_coaching_sessions_are_reminded_and_concluded(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id, paused_goal = new_goal_id(), new_goal_id()
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [
                goal_event(snapshot(goal_id, at=START), at=START),
                goal_event(snapshot(paused_goal, at=START), at=START),
            ],
        )
        await app.wait_projected(goal_id)
        await app.wait_projected(paused_goal)

        async def schedule(goal: str, starts: datetime, **extra: Any) -> Any:
            body = {
                "goal_id": goal,
                "starts_at": starts.isoformat(),
                "duration_minutes": 45,
                **extra,
            }
            return await app.http.post("/v1/sessions", json=body, headers=app.headers)

        starts = datetime(2026, 3, 3, 15, tzinfo=UTC)
        created = await schedule(
            goal_id, starts, link="https://meet.example.com/ada", reminder_lead_minutes=[1440, 30]
        )
        assert created.status_code == 201, created.text
        session = created.json()
        assert session["status"] == "scheduled"
        assert [p["role"] for p in session["participants"]] == ["mentee", "mentor", "sponsor"]
        assert created.headers["location"] == f"/v1/sessions/{session['id']}"
        fetched = await app.http.get(f"/v1/sessions/{session['id']}", headers=app.headers)
        assert fetched.json() == session
        assert (
            await app.http.get(f"/v1/sessions/{session['id']}", headers=auth_headers("globex"))
        ).status_code == 404

        assert (await schedule(goal_id, START - timedelta(hours=1), location="Cafe")).json()[
            "errors"
        ][0]["field"] == "body.starts_at"
        neither = await schedule(goal_id, starts)
        assert neither.status_code == 422
        too_early = await app.http.post(f"/v1/sessions/{session['id']}/held", headers=app.headers)
        assert too_early.status_code == 409
        assert too_early.json()["type"].endswith("/not-started")

        # Another session on a goal that gets paused: its reminder is not sent.
        quiet = (await schedule(paused_goal, starts, location="Room 4")).json()
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [
                goal_event(
                    snapshot(paused_goal, version=2, status="paused", at=START),
                    cls=GoalPaused,
                    at=START,
                )
            ],
        )
        await app.wait_projected(paused_goal, 2)

        day_before = starts - timedelta(days=1)
        await app.step_to(day_before)
        await app.step_to(starts - timedelta(minutes=30))
        reminders = [e for e in await app.outbox_events() if isinstance(e, SessionReminder)]
        assert [(e.data.lead_minutes, e.time) for e in reminders] == [
            (1440, day_before),
            (30, starts - timedelta(minutes=30)),
        ]
        assert all(e.data.session.session_id == session["id"] for e in reminders)
        reasoning = reminders[1].data.reasoning
        assert reasoning is not None
        assert reasoning.local_start == "2026-03-03T16:00:00"
        assert reasoning.late is False

        await app.step_to(starts + timedelta(minutes=50))
        held = await app.http.post(f"/v1/sessions/{session['id']}/held", headers=app.headers)
        assert held.status_code == 200
        assert held.json()["status"] == "held"
        again = await app.http.post(f"/v1/sessions/{session['id']}/cancel", headers=app.headers)
        assert again.status_code == 409
        assert again.json()["type"].endswith("/illegal-transition")
        no_show = await app.http.post(f"/v1/sessions/{quiet['id']}/no-show", headers=app.headers)
        assert no_show.status_code == 200

        # Cancelling a future session cancels its reminders.
        later = (await schedule(goal_id, starts + timedelta(days=7), location="Cafe")).json()
        cancelled = await app.http.post(f"/v1/sessions/{later['id']}/cancel", headers=app.headers)
        assert cancelled.json()["status"] == "cancelled"
        assert [t for t in await app.timers(goal_id) if t.session_id == later["id"]] == []
        await app.step_to(starts + timedelta(days=8))

        kinds = [type(e) for e in await app.outbox_events()]
        assert kinds == [
            SessionScheduled,
            SessionScheduled,
            SessionReminder,
            SessionReminder,
            SessionHeld,
            SessionNoShow,
            SessionScheduled,
            SessionCancelled,
        ]


async def test_signed_links_confirm_on_get_and_act_on_post(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    policy = weekly(
        ["MO"],
        grace_minutes=60,
        escalation=[{"after_misses": 1, "notify_roles": ["mentor"]}],
    )
    settings = settings_for(SessionsSettings, link_signing_secret=SECRET)
    async with running_sessions(settings, clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [goal_event(snapshot(goal_id, policy=policy, at=START), at=START)],
        )
        await app.wait_projected(goal_id)

        def link(action: str, **claims: Any) -> str:
            return sign_link(
                SECRET,
                action=action,
                tenant_id="acme",
                subject=goal_id,
                claims={"occ": None, "role": "mentee", **claims},
            )

        html = {"Accept": "text/html"}
        # GET only shows a form: a mail scanner fetching it changes nothing.
        snooze = link("snooze")
        page = await app.http.get("/v1/links/snooze", params={"token": snooze}, headers=html)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'method="post"' in page.text
        assert f'value="{snooze}"' in page.text
        assert "Goal " + goal_id[:8] in page.text
        assert await app.outbox_events() == []

        done = await app.http.post(
            "/v1/links/snooze", data={"token": snooze, "minutes": "60"}, headers=html
        )
        assert done.status_code == 200, done.text
        assert "Snoozed" in done.text
        assert "2026-03-02 11:00 (Europe/Berlin)" in done.text  # 09:00 + 60 grace + 60 snooze
        twice = await app.http.post("/v1/links/snooze", data={"token": snooze}, headers=html)
        assert twice.status_code == 409
        assert twice.headers["content-type"].startswith("text/html")

        # The miss comes, the mentor's acknowledge link cancels the escalation.
        await app.step_to(datetime(2026, 3, 2, 10, tzinfo=UTC))
        acknowledge = link("acknowledge", role="mentor")
        shown = await app.http.get(
            "/v1/links/acknowledge", params={"token": acknowledge}, headers=html
        )
        assert shown.status_code == 200
        assert not [e for e in await app.outbox_events() if isinstance(e, CheckinAcknowledged)]
        acted = await app.http.post(
            "/v1/links/acknowledge", data={"token": acknowledge}, headers=html
        )
        assert acted.status_code == 200
        (ack,) = [e for e in await app.outbox_events() if isinstance(e, CheckinAcknowledged)]
        assert ack.data.acknowledged_by == "mentor"
        assert ack.data.cancelled_escalations == 1

        # A check-in link records a check-in now.
        checked = await app.http.post(
            "/v1/links/checkin", data={"token": link("checkin")}, headers=html
        )
        assert checked.status_code == 200
        (completed,) = [e for e in await app.outbox_events() if isinstance(e, CheckinCompleted)]
        assert completed.data.checkin.source == "email-link"
        assert completed.data.checkin.late is True

        # Bad links: tampered, for another action, expired. HTML for browsers, problems else.
        tampered = await app.http.get(
            "/v1/links/checkin", params={"token": link("checkin")[:-3] + "abc"}, headers=html
        )
        assert tampered.status_code == 400
        assert tampered.headers["content-type"].startswith("text/html")
        other_action = await app.http.post("/v1/links/checkin", data={"token": acknowledge})
        assert other_action.status_code == 400
        assert other_action.headers["content-type"].startswith("application/problem+json")
        assert other_action.json()["type"].endswith("/invalid-link")
        expired = sign_link(
            SECRET,
            action="checkin",
            tenant_id="acme",
            subject=goal_id,
            ttl=timedelta(minutes=5),
            now=datetime.now(UTC) - timedelta(hours=1),
        )
        gone = await app.http.get("/v1/links/checkin", params={"token": expired})
        assert gone.status_code == 410
        assert gone.json()["type"].endswith("/link-expired")
        foreign = sign_link(SECRET, action="checkin", tenant_id="globex", subject=goal_id)
        assert (
            await app.http.get("/v1/links/checkin", params={"token": foreign})
        ).status_code == 404
        unknown = await app.http.get("/v1/links/delete", params={"token": expired})
        assert unknown.status_code == 422

        assert [e.type for e in await app.outbox_events()] == [
            "checkin.snoozed",
            "checkin.due_soon",
            "checkin.missed",
            "checkin.acknowledged",
            "checkin.completed",
        ]
