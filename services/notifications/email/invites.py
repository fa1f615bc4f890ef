"""iTIP invitations (RFC 5546) on session emails, so mail clients offer "add to calendar".

``session.scheduled`` and ``session.rescheduled`` carry ``METHOD:REQUEST``,
``session.cancelled`` carries ``METHOD:CANCEL``, all with the session's UID
and the SEQUENCE sessions counts (0 when scheduled, one more at each
reschedule and at cancelling): a client adds the event on the first, moves it
on the next and removes it on the cancel. The event is the same one the
calendar feeds show (:func:`shared.ical.session_event`); the organiser is the
session's coach or mentor, sent by this service's From address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from shared.ical import new_calendar, serialise, session_event

METHODS = {
    "session.scheduled": "REQUEST",
    "session.rescheduled": "REQUEST",
    "session.cancelled": "CANCEL",
}
INVITE_TYPES = frozenset(METHODS)


@dataclass(frozen=True, slots=True)
class Invite:
    method: str
    body: bytes


def invite_for(event_type: str, payload: dict[str, Any], *, sender: str) -> Invite | None:
    """The calendar part of a session email, or None for any other type."""
    method = METHODS.get(event_type)
    data = payload.get("data") or {}
    session, goal = data.get("session"), data.get("goal")
    if method is None or not isinstance(session, dict) or not isinstance(goal, dict):
        return None
    calendar = new_calendar(method=method)
    event = session_event(
        session=session,
        goal_title=str(goal.get("title") or "your goal"),
        zone=str(goal.get("timezone") or "UTC"),
        stamp=datetime.fromisoformat(str(payload["time"])),
        sent_by=parseaddr(sender)[1] or None,
    )
    calendar.add_component(event)
    return Invite(method, serialise(calendar))
