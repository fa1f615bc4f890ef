"""Sessions' part of a person's export: goals they are on, check-ins, coaching sessions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from services.sessions.models import Checkin, CoachingSessionRow, GoalProjection
from shared.db.database import Database
from shared.privacy.scrub import participant_emails


class SessionsExport:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def __call__(self, tenant_id: str, email: str) -> dict[str, Any]:
        async with self._db.reader() as session:
            projections = (
                await session.execute(
                    select(GoalProjection).where(GoalProjection.tenant_id == tenant_id)
                )
            ).scalars()
            goals: list[dict[str, Any]] = []
            mentee_of: list[str] = []
            for row in projections:
                people = row.snapshot.get("participants") or []
                roles = [p.get("role") for p in people if _is(p, email)]
                if not roles:
                    continue
                goals.append(
                    {
                        "goal_id": row.goal_id,
                        "roles": roles,
                        "status": row.status,
                        "current_streak": row.current_streak,
                        "longest_streak": row.longest_streak,
                        "last_checkin_at": row.last_checkin_at,
                    }
                )
                if "mentee" in roles:
                    mentee_of.append(row.goal_id)
            checkins = []
            if mentee_of:
                rows = await session.execute(
                    select(Checkin)
                    .where(Checkin.tenant_id == tenant_id, Checkin.goal_id.in_(mentee_of))
                    .order_by(Checkin.occurred_at)
                )
                checkins = [
                    {
                        "id": c.id,
                        "goal_id": c.goal_id,
                        "occurred_at": c.occurred_at,
                        "rating": c.rating,
                        "notes": c.notes,
                        "blockers": c.blockers,
                        "status": c.status,
                    }
                    for c in rows.scalars()
                ]
            meetings = [
                {
                    "id": m.id,
                    "goal_id": m.goal_id,
                    "starts_at": m.starts_at,
                    "status": m.status,
                    "participants": m.participants,
                }
                for m in (
                    await session.execute(
                        select(CoachingSessionRow).where(CoachingSessionRow.tenant_id == tenant_id)
                    )
                ).scalars()
                if email in participant_emails(m.participants)
            ]
        return {"goals": goals, "checkins": checkins, "coaching_sessions": meetings}


def _is(person: Any, email: str) -> bool:
    return isinstance(person, dict) and str(person.get("email", "")).lower() == email
