"""iCalendar (RFC 5545) and iTIP (RFC 5546) building blocks both sessions and notifications use.

Sessions writes the subscribable feeds, notifications the invitations on
session emails; a coaching session must look the same in both (one UID, one
SEQUENCE rule, the same organiser and attendees), so the event is built here
once. Everything is written with the ``icalendar`` library, never by string
templates; times carry the zone's TZID and the calendar gets the VTIMEZONE
components its events need (``add_missing_timezones``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

PRODID = "-//Followthrough//Calendars 1.0//EN"
UID_DOMAIN = "followthrough"
CHECKIN_NAMESPACE = uuid.UUID("0b8a4c55-3e0f-4f4e-9a55-0a4e1c6e2d17")
ORGANISER_ROLES = ("coach", "mentor")
"""The session's organiser is its first coach, else its first mentor, else its mentee."""
SESSION_STATUS = {
    "scheduled": "CONFIRMED",
    "held": "CONFIRMED",
    "no_show": "CONFIRMED",
    "cancelled": "CANCELLED",
}


def new_calendar(*, method: str | None = None, name: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", name)
    return calendar


def serialise(calendar: Calendar) -> bytes:
    """The calendar with every VTIMEZONE its events refer to, as RFC 5545 text (CRLF, folded)."""
    calendar.add_missing_timezones()
    data: bytes = calendar.to_ical()
    return data


def wall_time(moment: datetime, zone: str) -> datetime:
    """``moment`` as a DATE-TIME with the zone's TZID, or in UTC when local time cannot say it.

    A local time in the hour clocks fall back through happens twice, and RFC
    5545 reads a TZID time there as the *first* one. An instant in the second
    pass (a deadline or a session end just after the change) would be read an
    hour (or 30 minutes on Lord Howe) early, so it is written in UTC instead,
    which every client reads exactly.
    """
    local = moment.astimezone(ZoneInfo(zone)).replace(fold=0)
    if local.astimezone(UTC) != moment.astimezone(UTC):
        return moment.astimezone(UTC)
    return local


def session_uid(session_id: str) -> str:
    return f"session-{session_id}@{UID_DOMAIN}"


def checkin_uid(tenant_id: str, goal_id: str, sequence: int) -> str:
    """Check-in number ``sequence`` of a goal: stable across re-planning (it keeps its number)."""
    key = uuid.uuid5(CHECKIN_NAMESPACE, f"{tenant_id}|{goal_id}|{sequence}")
    return f"checkin-{key}@{UID_DOMAIN}"


def address(person: Mapping[str, Any], **params: str) -> vCalAddress:
    value = vCalAddress(f"mailto:{person['email']}")
    name = " ".join(str(person.get("name") or "").split())
    if name:
        value.params["cn"] = name
    for key, param in params.items():
        value.params[key.replace("_", "-")] = param
    return value


def organiser_of(participants: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    people = list(participants)
    for role in (*ORGANISER_ROLES, "mentee"):
        for person in people:
            if person.get("role") == role:
                return person
    return people[0] if people else None


def session_event(
    *,
    session: Mapping[str, Any],
    goal_title: str,
    zone: str,
    stamp: datetime,
    sent_by: str | None = None,
) -> Event:
    """One coaching session as a VEVENT: its state, organiser and attendees by role.

    ``session`` is the ``CoachingSession`` of the events (JSON form or model
    dump): ``session_id``, ``starts_at``, ``duration_minutes``,
    ``participants``, ``location``, ``link``, ``status`` and ``sequence``.
    """
    starts = _instant(session["starts_at"])
    event = Event()
    event.add("uid", session_uid(str(session["session_id"])))
    event.add("sequence", int(session.get("sequence") or 0))
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", wall_time(starts, zone))
    ends = starts + timedelta(minutes=int(session["duration_minutes"]))
    event.add("dtend", wall_time(ends, zone))
    event.add("summary", f"Coaching session: {goal_title}")
    status = str(session.get("status") or "scheduled")
    event.add("status", SESSION_STATUS.get(status, "CONFIRMED"))
    lines = [f"Coaching session for the goal {goal_title!r}."]
    if status in ("held", "no_show"):
        lines.append("Held." if status == "held" else "Recorded as a no-show.")
    if session.get("link"):
        event.add("url", str(session["link"]))
        lines.append(f"Join: {session['link']}")
    if session.get("location"):
        event.add("location", str(session["location"]))
    event.add("description", "\n".join(lines))
    participants = list(session.get("participants") or [])
    organiser = organiser_of(participants)
    if organiser is not None:
        params = {"sent_by": f"mailto:{sent_by}"} if sent_by else {}
        event.add("organizer", address(organiser, **params))
    for person in participants:
        if person is organiser:
            continue
        event.add(
            "attendee",
            address(
                person,
                role="REQ-PARTICIPANT",
                partstat="NEEDS-ACTION",
                rsvp="FALSE",
                x_followthrough_role=str(person.get("role")),
            ),
        )
    return event


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError("an aware instant is required")
    return moment
