"""Calendar feeds over real HTTP: listing, ETag, what each person's feed holds, sessions with
their state, rotation and revocation, and every bad token answering 404 with no hint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import recurring_ical_events
from icalendar import Calendar

from services.sessions.settings import SessionsSettings
from shared.auth.links import sign_link
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.events.catalog.goals import GoalCompleted, GoalPaused
from tests.services.sessions.support import (
    MENTEE,
    MENTOR,
    SPONSOR,
    Sessions,
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    weekly,
)

START = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday
SECRET = "test-link-secret-0123456789abcdef"


def path_of(app: Sessions, url: str) -> str:
    return url.removeprefix(app.settings.public_base_url.rstrip("/"))


async def listing(app: Sessions, goal_id: str) -> dict[str, dict[str, Any]]:
    response = await app.http.get(f"/v1/goals/{goal_id}/calendars", headers=app.headers)
    assert response.status_code == 200, response.text
    return {p["email"]: p for p in response.json()["participants"]}


async def feed(app: Sessions, url: str) -> Calendar:
    response = await app.http.get(path_of(app, url))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def events(calendar: Calendar, prefix: str = "") -> list[Any]:
    return [
        e
        for e in recurring_ical_events.of(calendar).between(
            START - timedelta(days=60), START + timedelta(days=400)
        )
        if str(e["uid"]).startswith(prefix)
    ]


async def test_feeds_list_rotate_revoke_and_show_only_ones_own(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id, other_goal, foreign_goal = new_goal_id(), new_goal_id(), new_goal_id()
    settings = settings_for(SessionsSettings, link_signing_secret=SECRET, calendar_horizon_days=21)
    async with running_sessions(settings, clock, auth_headers()) as app:
        policy = weekly(["MO", "TH"], reminder_lead_minutes=[60, 15])
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [
                goal_event(snapshot(goal_id, at=START, policy=policy), at=START),
                # Ada's second goal in the tenant, without Linus.
                goal_event(
                    snapshot(
                        other_goal,
                        at=START,
                        policy=weekly(["WE"], at="18:00"),
                        participants=[MENTEE, MENTOR],
                    ),
                    at=START,
                ),
                # Ada in another tenant: never in acme's feeds.
                goal_event(
                    snapshot(foreign_goal, at=START, policy=weekly(["TU"])),
                    tenant="globex",
                    at=START,
                ),
            ],
        )
        for goal in (goal_id, other_goal, foreign_goal):
            await app.wait_projected(goal)

        people = await listing(app, goal_id)
        assert set(people) == {MENTEE["email"], MENTOR["email"], SPONSOR["email"]}
        assert people["ada@example.com"]["role"] == "mentee"
        assert await listing(app, goal_id) == people, "the URLs are stable until rotated"
        ada, linus = people["ada@example.com"], people["linus@example.com"]
        assert ada["goal_feed"]["scope"] == "goal"
        assert ada["person_feed"]["scope"] == "person"
        assert ada["goal_feed"]["url"] != linus["goal_feed"]["url"]
        other = auth_headers("globex")
        assert (
            await app.http.get(f"/v1/goals/{goal_id}/calendars", headers=other)
        ).status_code == 404

        # Check-ins: three weeks of Monday and Thursday 09:00 Berlin, each with two alarms.
        calendar = await feed(app, ada["goal_feed"]["url"])
        checkins = events(calendar, "checkin-")
        starts = [e.decoded("dtstart").astimezone(UTC) for e in checkins]
        assert len(starts) == 6
        assert starts == sorted(starts)
        assert all(e["dtstart"].params["TZID"] == "Europe/Berlin" for e in checkins)
        assert {e.decoded("dtstart").strftime("%a %H:%M") for e in checkins} == {
            "Mon 09:00",
            "Thu 09:00",
        }
        assert all(len(e.walk("VALARM")) == 2 for e in checkins)
        assert str(calendar["x-wr-calname"]).endswith(f"Goal {goal_id[:8]}")

        # A session with Ada and Grace only: in their feeds, not in Linus's.
        scheduled = await app.http.post(
            "/v1/sessions",
            json={
                "goal_id": goal_id,
                "starts_at": (START + timedelta(days=2)).isoformat(),
                "duration_minutes": 30,
                "location": "Room 4",
                "participants": [MENTEE, MENTOR],
            },
            headers=app.headers,
        )
        assert scheduled.status_code == 201, scheduled.text
        session_id = scheduled.json()["id"]
        (session,) = events(await feed(app, ada["goal_feed"]["url"]), "session-")
        assert str(session["uid"]) == f"session-{session_id}@followthrough"
        assert str(session["status"]) == "CONFIRMED"
        assert session.decoded("sequence") == 0
        assert str(session["organizer"]) == "mailto:grace@example.com"
        assert not events(await feed(app, linus["goal_feed"]["url"]), "session-")
        assert len(events(await feed(app, linus["goal_feed"]["url"]), "checkin-")) == 6

        # ETag and If-None-Match.
        first = await app.http.get(path_of(app, ada["goal_feed"]["url"]))
        etag = first.headers["etag"]
        same = await app.http.get(
            path_of(app, ada["goal_feed"]["url"]), headers={"If-None-Match": etag}
        )
        assert same.status_code == 304
        assert same.content == b""
        cancelled = await app.http.post(f"/v1/sessions/{session_id}/cancel", headers=app.headers)
        assert cancelled.status_code == 200
        changed = await app.http.get(
            path_of(app, ada["goal_feed"]["url"]), headers={"If-None-Match": etag}
        )
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        (session,) = events(Calendar.from_ical(changed.content), "session-")
        assert str(session["status"]) == "CANCELLED"
        assert session.decoded("sequence") == 1

        # Ada's person feed: both acme goals (Monday, Wednesday, Thursday), nothing of globex.
        mine = events(await feed(app, ada["person_feed"]["url"]), "checkin-")
        assert {e.decoded("dtstart").strftime("%a") for e in mine} == {"Mon", "Wed", "Thu"}
        assert len(mine) == 6 + 3
        linus_all = events(await feed(app, linus["person_feed"]["url"]), "checkin-")
        assert {e.decoded("dtstart").strftime("%a") for e in linus_all} == {"Mon", "Thu"}

        # Bad tokens: all 404, the same answer whatever the reason.
        good = path_of(app, ada["goal_feed"]["url"])
        token = good.removeprefix("/v1/calendars/").removesuffix(".ics")
        forged = sign_link(
            "another-secret-0123456789abcdefgh",
            action="calendar",
            tenant_id="acme",
            subject=ada["goal_feed"]["feed_id"],
            claims={"v": 1},
        )
        stale = sign_link(
            SECRET,
            action="calendar",
            tenant_id="acme",
            subject=ada["goal_feed"]["feed_id"],
            claims={"v": 1},
            ttl=timedelta(days=1),
            now=START - timedelta(days=2),
        )
        other_tenant = sign_link(
            SECRET,
            action="calendar",
            tenant_id="globex",
            subject=ada["goal_feed"]["feed_id"],
            claims={"v": 1},
            now=START,
        )
        unknown = sign_link(
            SECRET, action="calendar", tenant_id="acme", subject="nope", claims={"v": 1}
        )
        checkin_link = sign_link(
            SECRET, action="checkin", tenant_id="acme", subject=goal_id, claims={"v": 1}
        )
        for bad in (token[:-2] + "xx", forged, stale, other_tenant, unknown, checkin_link, "x"):
            response = await app.http.get(f"/v1/calendars/{bad}.ics")
            assert response.status_code == 404, bad
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["detail"] == "no such calendar"

        # The "add to calendar" link of reminder emails shows the recipient's feed of the goal.
        def subscribe_link(email: str, goal: str = goal_id, secret: str = SECRET) -> str:
            token = sign_link(
                secret,
                action="calendar-subscribe",
                tenant_id="acme",
                subject=goal,
                claims={"email": email},
            )
            return f"/v1/links/calendar?token={token}"

        html = {"Accept": "text/html"}
        page = await app.http.get(subscribe_link("Ada@example.com"), headers=html)
        assert page.status_code == 200, page.text
        assert ada["goal_feed"]["url"] in page.text
        assert "webcal://" in page.text
        assert (
            await app.http.get(subscribe_link("linus@example.com", other_goal))
        ).status_code == 404
        forged_page = subscribe_link("ada@example.com", secret="x" * 40)
        assert (await app.http.get(forged_page, headers=html)).status_code == 400

        # Rotation: the old URL stops, the new one works; revocation stops it until rotated.
        feed_id = ada["goal_feed"]["feed_id"]
        assert (
            await app.http.post(f"/v1/calendars/{feed_id}/rotate", headers=other)
        ).status_code == 404
        rotated = await app.http.post(f"/v1/calendars/{feed_id}/rotate", headers=app.headers)
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["version"] == 2
        assert (await app.http.get(good)).status_code == 404
        new_url = rotated.json()["url"]
        assert (await app.http.get(path_of(app, new_url))).status_code == 200
        assert (await listing(app, goal_id))["ada@example.com"]["goal_feed"]["url"] == new_url
        revoked = await app.http.post(f"/v1/calendars/{feed_id}/revoke", headers=app.headers)
        assert revoked.status_code == 200
        assert revoked.json()["url"] is None
        assert revoked.json()["revoked_at"] is not None
        assert (await app.http.get(path_of(app, new_url))).status_code == 404
        assert (await listing(app, goal_id))["ada@example.com"]["goal_feed"]["url"] is None
        again = await app.http.post(f"/v1/calendars/{feed_id}/rotate", headers=app.headers)
        assert (await app.http.get(path_of(app, again.json()["url"]))).status_code == 200

        # Paused: no future check-ins. Ended: an empty, valid calendar.
        grace_url = people["grace@example.com"]["goal_feed"]["url"]
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [
                goal_event(
                    snapshot(goal_id, version=2, status="paused", at=START, policy=policy),
                    cls=GoalPaused,
                    at=START,
                )
            ],
        )
        await app.wait_projected(goal_id, 2)
        paused = await feed(app, grace_url)
        assert not [
            e for e in events(paused, "checkin-") if e.decoded("dtstart").astimezone(UTC) > START
        ]
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [
                goal_event(
                    snapshot(goal_id, version=3, status="completed", at=START, policy=policy),
                    cls=GoalCompleted,
                    at=START,
                )
            ],
        )
        await app.wait_projected(goal_id, 3)
        ended = await feed(app, grace_url)
        assert ended.name == "VCALENDAR"
        assert str(ended["version"]) == "2.0"
        assert not ended.walk("VEVENT")
