"""The calendar feed, parsed and expanded with the iCalendar libraries, against the forecast and
what the scheduler really plans, across the DST transitions of four awkward zones.

New York (1 h), Lord Howe (30 min), Santiago (the change at midnight) and
Chatham (UTC+12:45/13:45), each with check-ins inside the hour that is
skipped in spring and repeated in autumn. For every window around a
transition: the feed's check-in instants (read through the TZID by
``recurring-ical-events`` and again through the feed's own VTIMEZONE), the
forecast's ``checkin.due`` items and the occurrences the scheduler then
plans, one by one, are the same instants, none missing, none doubled, with
the same UID for the same check-in number; the alarms are the forecast's
reminders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import recurring_ical_events
from icalendar import Calendar, Timezone

from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.ical import checkin_uid
from tests.services.sessions.support import (
    MENTOR,
    Sessions,
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
)

START = datetime(2026, 3, 5, 12, tzinfo=UTC)
CASES: dict[str, dict[str, Any]] = {
    # Spring: 02:00-03:00 skipped on 8 Mar; autumn: 01:00-02:00 twice on 1 Nov.
    "new-york": {
        "zone": "America/New_York",
        "rrule": "FREQ=DAILY;BYHOUR=1,2;BYMINUTE=30",
        "at": "01:30",
        # 01:00 reminders fall in quiet hours and wait until 01:10: absolute alarms.
        "quiet_hours": {"start": "00:50", "end": "01:10"},
    },
    # Autumn: 01:30-02:00 twice on 5 Apr; spring: 02:00-02:30 skipped on 4 Oct.
    "lord-howe-autumn": {
        "zone": "Australia/Lord_Howe",
        "rrule": "FREQ=DAILY;BYHOUR=1,4;BYMINUTE=45",
        "at": "01:45",
    },
    "lord-howe-spring": {
        "zone": "Australia/Lord_Howe",
        "rrule": "FREQ=DAILY;BYHOUR=2,3;BYMINUTE=15",
        "at": "02:15",
    },
    # Autumn: 23:00-24:00 twice on 4 Apr; spring: 00:00-01:00 skipped on 6 Sep.
    "santiago": {
        "zone": "America/Santiago",
        "rrule": "FREQ=DAILY;BYHOUR=0,23;BYMINUTE=30",
        "at": "00:30",
    },
    # Autumn: 02:45-03:45 twice on 5 Apr; spring: the same hour skipped on 27 Sep.
    "chatham": {
        "zone": "Pacific/Chatham",
        "rrule": "FREQ=DAILY;BYHOUR=3,6;BYMINUTE=15",
        "at": "03:15",
    },
}
WINDOWS = [
    (datetime(2026, 3, 5, 12, tzinfo=UTC), timedelta(days=7)),  # New York spring
    (datetime(2026, 4, 1, 12, tzinfo=UTC), timedelta(days=7)),  # the three southern autumns
    (datetime(2026, 9, 2, 12, tzinfo=UTC), timedelta(days=7)),  # Santiago spring
    (datetime(2026, 9, 24, 12, tzinfo=UTC), timedelta(days=13)),  # Chatham, Lord Howe spring
    (datetime(2026, 10, 29, 12, tzinfo=UTC), timedelta(days=6)),  # New York autumn
]


def policy(case: str) -> dict[str, Any]:
    spec = CASES[case]
    found: dict[str, Any] = {
        "cadence": {"kind": "rrule", "rrule": spec["rrule"]},
        "time_of_day": spec["at"],
        "timezone": spec["zone"],
        "reminder_lead_minutes": [30],
        "grace_minutes": 20,
    }
    if "quiet_hours" in spec:
        found["quiet_hours"] = spec["quiet_hours"]
    return found


def checkin_events(body: bytes, start: datetime, end: datetime) -> list[Any]:
    calendar = Calendar.from_ical(body)
    expanded = recurring_ical_events.of(calendar).between(start, end + timedelta(seconds=1))
    return [
        event
        for event in expanded
        if str(event["uid"]).startswith("checkin-")
        and start < event.decoded("dtstart").astimezone(UTC) <= end
    ]


def through_vtimezone(body: bytes, event: Any) -> datetime:
    """The event's start read with the feed's own VTIMEZONE, not the system's zone data."""
    calendar = Calendar.from_ical(body)
    tzid = event["dtstart"].params["TZID"]
    (component,) = [tz for tz in calendar.walk("VTIMEZONE") if str(tz["tzid"]) == tzid]
    assert isinstance(component, Timezone)
    local: datetime = event.decoded("dtstart").replace(tzinfo=None)
    return local.replace(tzinfo=component.to_tz()).astimezone(UTC)


def alarm_instants(event: Any) -> list[datetime]:
    start = event.decoded("dtstart").astimezone(UTC)
    found = []
    for alarm in event.walk("VALARM"):
        trigger = alarm.decoded("trigger")
        found.append(start + trigger if isinstance(trigger, timedelta) else trigger.astimezone(UTC))
    return found


async def mentee_feed_path(app: Sessions, goal_id: str) -> str:
    listing = await app.http.get(f"/v1/goals/{goal_id}/calendars", headers=app.headers)
    assert listing.status_code == 200, listing.text
    (mentee,) = [p for p in listing.json()["participants"] if p["role"] == "mentee"]
    url: str = mentee["goal_feed"]["url"]
    return url.removeprefix(app.settings.public_base_url.rstrip("/"))


async def test_feed_matches_forecast_and_scheduler_across_dst(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goals = {case: new_goal_id() for case in CASES}
    settings = settings_for(SessionsSettings, calendar_horizon_days=14)
    decisions: dict[str, set[str]] = {case: set() for case in CASES}
    async with running_sessions(settings, clock, auth_headers()) as app:
        events = [
            goal_event(
                snapshot(
                    goal_id,
                    at=START,
                    policy=policy(case),
                    participants=[
                        {"role": "mentee", "name": "Ada", "email": "ada@example.com"},
                        MENTOR,
                    ],
                ),
                at=START,
            )
            for case, goal_id in goals.items()
        ]
        await publish(broker.bootstrap_servers, f"{topic_prefix}goals", events)
        for goal_id in goals.values():
            await app.wait_projected(goal_id)
        paths = {case: await mentee_feed_path(app, goal_id) for case, goal_id in goals.items()}

        for start, length in WINDOWS:
            await app.step_to(start)
            end = start + length
            feeds, forecasts = {}, {}
            for case, goal_id in goals.items():
                response = await app.http.get(paths[case])
                assert response.status_code == 200, response.text
                assert response.headers["content-type"] == "text/calendar; charset=utf-8"
                feeds[case] = response.content
                forecast = await app.http.get(
                    f"/v1/goals/{goal_id}/schedule",
                    params={"until": end.isoformat()},
                    headers=app.headers,
                )
                assert forecast.status_code == 200, forecast.text
                assert forecast.json()["truncated"] is False
                forecasts[case] = forecast.json()["items"]

            # What the scheduler really does: walk through the window, then read what it planned.
            await app.step_to(end)
            for case, goal_id in goals.items():
                body, items = feeds[case], forecasts[case]
                in_window = checkin_events(body, start, end)
                feed_instants = [e.decoded("dtstart").astimezone(UTC) for e in in_window]
                assert all(e["dtstart"].params["TZID"] == CASES[case]["zone"] for e in in_window)
                assert [through_vtimezone(body, e) for e in in_window] == feed_instants, case

                due = [i for i in items if i["kind"] == "checkin.due"]
                forecast_instants = [datetime.fromisoformat(i["at"]) for i in due]
                planned = [o for o in await app.occurrences(goal_id) if start < o.due_at <= end]
                scheduled = [o.due_at for o in planned]

                assert len(feed_instants) == len(set(feed_instants)), f"{case}: doubled"
                assert sorted(feed_instants) == forecast_instants == scheduled, (
                    case,
                    " ".join(f"{x:%d %H:%M}" for x in feed_instants),
                    " ".join(f"{x:%d %H:%M}" for x in forecast_instants),
                    " ".join(f"{x:%d %H:%M}" for x in scheduled),
                )
                assert len(scheduled) >= 2 * length.days - 1, case
                by_uid = {str(e["uid"]): e.decoded("dtstart").astimezone(UTC) for e in in_window}
                assert by_uid == {
                    checkin_uid("acme", goal_id, o.sequence): o.due_at for o in planned
                }, case

                reminders = sorted(
                    datetime.fromisoformat(i["at"])
                    for i in items
                    if i["kind"] == "checkin.due_soon"
                )
                alarms = sorted(a for e in in_window for a in alarm_instants(e))
                assert alarms == reminders, case
                decisions[case].update(o.dst_decision or "" for o in planned)

    # The windows really crossed both kinds of transition in every zone.
    by_zone: dict[str, set[str]] = {}
    for case, notes in decisions.items():
        by_zone.setdefault(CASES[case]["zone"], set()).update(notes)
    assert len(by_zone) == 4
    for zone, notes in by_zone.items():
        assert any("does not exist" in note for note in notes), zone
        assert any("occurs twice" in note for note in notes), zone
