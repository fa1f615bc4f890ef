"""Building the events the sessions service emits, and the ids of timed ones.

The id of a timed event is derived from what it is about (goal, occurrence
due time, kind, level) rather than drawn at random: re-planning a schedule,
catching up after an outage, or a second scheduler replica can then only
ever produce the same event again, which notifications drops by id. The
timer row carries that id as its primary key, so a moment that already
fired is never planned a second time either.
"""

from __future__ import annotations

from datetime import UTC, datetime

import uuid_utils

from services.sessions.models import CoachingSessionRow, Occurrence
from shared.events.catalog.common import Participant
from shared.events.catalog.goals import GoalSnapshot
from shared.events.catalog.sessions import CoachingSession, GoalRef
from shared.events.catalog.sessions import Occurrence as OccurrenceModel
from shared.events.envelope import EventData
from shared.events.registry import EventT, build_event

SOURCE = "/followthrough/sessions"
NAMESPACE = uuid_utils.UUID("6f1d2c3e-5b7a-4e43-9a1f-2f0c8d6b7e11")


def timed_event_id(goal_id: str, due_at: datetime, kind: str, level: int) -> str:
    """The id of the one event that may ever exist for this goal, moment, kind and level.

    An RFC 4122 name-based (SHA-1) UUID, the same as ``uuid.uuid5`` gives; built by
    ``uuid_utils`` because a scheduler pass makes three for every miss it fires.
    """
    moment = due_at.astimezone(UTC).isoformat(timespec="seconds")
    return str(uuid_utils.uuid5(NAMESPACE, f"{goal_id}|{moment}|{kind}|{level}"))


def occurrence_id(goal_id: str, due_at: datetime) -> str:
    return timed_event_id(goal_id, due_at, "occurrence", 0)


def goal_ref(snapshot: GoalSnapshot) -> GoalRef:
    return GoalRef(
        goal_id=snapshot.goal_id,
        external_ref=snapshot.external_ref,
        title=snapshot.title,
        category=snapshot.category,
        timezone=snapshot.timezone,
        participants=snapshot.participants,
    )


def occurrence_model(row: Occurrence) -> OccurrenceModel:
    return OccurrenceModel(
        occurrence_id=row.id,
        sequence=row.sequence,
        due_at=row.due_at,
        local_due=row.local_due,
        timezone=row.timezone,
        deadline_at=row.deadline_at,
    )


def session_model(row: CoachingSessionRow) -> CoachingSession:
    return CoachingSession(
        session_id=row.id,
        starts_at=row.starts_at,
        duration_minutes=row.duration_minutes,
        participants=[Participant.model_validate(p) for p in row.participants],
        location=row.location,
        link=row.link,
        status=row.status,  # type: ignore[arg-type]
        sequence=row.sequence or 0,
    )


def emit(
    cls: type[EventT],
    data: EventData,
    *,
    tenant_id: str,
    goal_id: str,
    time: datetime,
    subject: str,
    event_id: str | None = None,
    causation_id: str | None = None,
) -> EventT:
    """An event of this service, keyed by its goal so the goal's events stay in order."""
    return build_event(
        cls,
        data,
        tenant_id=tenant_id,
        partition_key=goal_id,
        source=SOURCE,
        subject=subject,
        event_id=event_id,
        time=time,
        causation_id=causation_id,
    )


def goal_subject(goal_id: str) -> str:
    return f"goals/{goal_id}"


def occurrence_subject(goal_id: str, occurrence: str) -> str:
    return f"goals/{goal_id}/occurrences/{occurrence}"


def session_subject(goal_id: str, session_id: str) -> str:
    return f"goals/{goal_id}/sessions/{session_id}"
