"""Who gets an email about which event, and when it may be sent.

Pure functions over the event and the tenant's configuration, so intake (to
route), the routing record (to explain) and the tests share one truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.events.catalog.common import Participant
from shared.events.catalog.goals import GoalSnapshot
from shared.events.catalog.sessions import CheckinEscalated, GoalRef
from shared.events.envelope import CloudEvent
from shared.privacy.keys import is_erased_address

EVERYONE = "*"
DEFAULT_RULES: dict[str, list[str]] = {
    "checkin.due_soon": ["mentee"],
    "checkin.missed": ["mentee"],
    "session.reminder": ["mentee"],
    "checkin.escalated": ["mentor", "coach"],
    "milestone.completed": ["mentor", "coach"],
    "session.no_show": ["mentor", "coach"],
    "goal.completed": [EVERYONE],
    "session.scheduled": [EVERYONE],
    "session.rescheduled": [EVERYONE],
    "session.cancelled": [EVERYONE],
}
"""Event type -> roles emailed, unless the tenant overrides that type."""

DIGEST_TYPES = frozenset(
    {
        "checkin.completed",
        "checkin.missed",
        "checkin.escalated",
        "streak.updated",
        "streak.broken",
        "milestone.completed",
        "goal.completed",
        "session.held",
        "session.no_show",
    }
)
"""What a weekly digest rolls up, for every digest recipient on the goal."""

DIGEST_EVENT_TYPE = "digest.weekly"
MISS_TYPES = frozenset({"checkin.missed", "checkin.escalated"})


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    name: str
    role: str
    timezone: str

    def as_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "timezone": self.timezone,
        }


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> QuietHours | None:
        if not start or not end or start == end:
            return None
        return cls(time.fromisoformat(start), time.fromisoformat(end))

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release_time(self, instant: datetime, zone: str) -> datetime | None:
        """When a send at ``instant`` may go in ``zone``; None if it may go now."""
        tz = ZoneInfo(zone)
        local = instant.astimezone(tz)
        if not self.contains(local.time().replace(tzinfo=None)):
            return None
        day = local.date()
        if not (self.start < self.end) and local.time().replace(tzinfo=None) >= self.start:
            day = day + timedelta(days=1)
        end = datetime.combine(day, self.end, tzinfo=tz)
        # A wall time skipped by DST resolves forwards through fold handling of zoneinfo.
        return end.astimezone(instant.tzinfo)


def goal_of(event: CloudEvent) -> GoalSnapshot | GoalRef | None:
    goal = getattr(event.data, "goal", None)
    return goal if isinstance(goal, GoalSnapshot | GoalRef) else None


def goal_timezone(goal: GoalSnapshot | GoalRef) -> str:
    return goal.timezone


def participants_of(event: CloudEvent) -> list[Participant]:
    goal = goal_of(event)
    return list(goal.participants) if goal is not None else []


def mentee_of(event: CloudEvent) -> Participant | None:
    return next((p for p in participants_of(event) if p.role == "mentee"), None)


def roles_for(event: CloudEvent, overrides: dict[str, list[str]]) -> list[str]:
    """The roles to email: the tenant's rule for this type, else the default.

    An escalation also reaches the roles its ladder step names: the goal's own
    policy chose them, so a rule cannot silently drop the sponsor at step 3.
    """
    roles = list(overrides.get(event.type, DEFAULT_RULES.get(event.type, [])))
    if isinstance(event, CheckinEscalated):
        roles += [role for role in event.data.notify_roles if role not in roles]
    return roles


SESSION_INVITE_TYPES = frozenset({"session.scheduled", "session.rescheduled", "session.cancelled"})
"""Emails with a calendar invitation: they go to the session's participants, not the goal's."""


def candidates(event: CloudEvent) -> list[Recipient]:
    """Everyone on the goal, once per email address (the first role listed wins).

    For a session's invitation, everyone in the session instead (a session may
    have been scheduled with fewer people than the goal has).
    """
    goal = goal_of(event)
    if goal is None:
        return []
    participants = list(goal.participants)
    session = getattr(event.data, "session", None)
    if event.type in SESSION_INVITE_TYPES and getattr(session, "participants", None):
        participants = list(session.participants)  # type: ignore[union-attr]
    seen: set[str] = set()
    people: list[Recipient] = []
    for participant in participants:
        email = str(participant.email).lower()
        if email in seen or is_erased_address(email):  # an erased person's stand-in
            continue
        seen.add(email)
        people.append(
            Recipient(
                email=email,
                name=participant.name,
                role=participant.role,
                timezone=participant.timezone or goal_timezone(goal),
            )
        )
    return people


def wants(roles: list[str], recipient: Recipient) -> bool:
    return EVERYONE in roles or recipient.role in roles
