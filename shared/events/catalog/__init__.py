"""The event catalog: one typed model per event type, grouped by the service that emits it."""

from shared.events.catalog.control import CONTROL_EVENTS
from shared.events.catalog.goals import GOAL_EVENTS
from shared.events.catalog.notifications import NOTIFICATION_EVENTS
from shared.events.catalog.privacy import PRIVACY_EVENTS
from shared.events.catalog.sessions import SESSION_EVENTS

ALL_EVENTS = (
    *GOAL_EVENTS,
    *SESSION_EVENTS,
    *NOTIFICATION_EVENTS,
    *PRIVACY_EVENTS,
    *CONTROL_EVENTS,
)

__all__ = [
    "ALL_EVENTS",
    "CONTROL_EVENTS",
    "GOAL_EVENTS",
    "NOTIFICATION_EVENTS",
    "PRIVACY_EVENTS",
    "SESSION_EVENTS",
]
