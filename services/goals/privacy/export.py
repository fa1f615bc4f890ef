"""``GET /v1/people/export``: everything the three services hold about one person, as one document.

Goals answers its own part from its database and asks sessions and
notifications for theirs (``GET /v1/people/export/part``) with the caller's
own credential, so the export can never show more than the caller may see. A
service that does not answer fails the export (502, naming it): an access
request is answered completely or not at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from services.goals.events import goal_snapshot
from services.goals.models import Erasure, GoalParticipant, ProgressReport
from services.goals.privacy.service import ErasureService, erasure_out
from services.goals.repository import GoalRepository
from shared.clock import Clock
from shared.db.database import Database
from shared.http.problems import ProblemError
from shared.privacy.keys import normalise_email


class PeopleExport:
    def __init__(
        self,
        database: Database,
        erasures: ErasureService,
        clock: Clock,
        *,
        sessions_url: str,
        notifications_url: str,
        timeout: float = 15.0,
    ) -> None:
        self._db = database
        self._erasures = erasures
        self._clock = clock
        self._parts = {"sessions": sessions_url, "notifications": notifications_url}
        self._timeout = timeout

    async def export(self, tenant_id: str, email: str, authorization: str) -> dict[str, Any]:
        address = normalise_email(email)
        own = await self.goals_part(tenant_id, address)
        async with httpx.AsyncClient(timeout=self._timeout) as http:
            answers = await asyncio.gather(
                *(
                    self._part(http, name, url, address, authorization)
                    for name, url in self._parts.items()
                )
            )
        return {
            "email": address,
            "tenant": tenant_id,
            "exported_at": self._clock.now(),
            "goals": own,
            **dict(zip(self._parts, answers, strict=True)),
        }

    async def _part(
        self, http: httpx.AsyncClient, name: str, url: str, email: str, authorization: str
    ) -> dict[str, Any]:
        try:
            answer = await http.get(
                f"{url.rstrip('/')}/v1/people/export/part",
                params={"email": email},
                headers={"Authorization": authorization},
            )
        except httpx.HTTPError as error:
            raise ProblemError(
                502, f"{name} did not answer the export: {type(error).__name__}", slug="upstream"
            ) from None
        if answer.status_code != 200:
            raise ProblemError(
                502, f"{name} answered the export with {answer.status_code}", slug="upstream"
            )
        part: dict[str, Any] = answer.json()
        return part

    async def goals_part(self, tenant_id: str, email: str) -> dict[str, Any]:
        async with self._db.reader() as session:
            goal_ids = sorted(
                set(
                    (
                        await session.execute(
                            select(GoalParticipant.goal_id).where(
                                GoalParticipant.tenant_id == tenant_id,
                                GoalParticipant.email == email,
                            )
                        )
                    ).scalars()
                )
            )
            states = await GoalRepository(session).load_many(tenant_id, ids=goal_ids)
            reports = (
                await session.execute(
                    select(ProgressReport)
                    .where(
                        ProgressReport.tenant_id == tenant_id, ProgressReport.goal_id.in_(goal_ids)
                    )
                    .order_by(ProgressReport.reported_at)
                )
            ).scalars()
            progress = [
                {
                    "goal_id": r.goal_id,
                    "percent": r.percent,
                    "note": r.note,
                    "reported_at": r.reported_at,
                }
                for r in reports
            ]
            key = self._erasures.key_of(tenant_id, email)
            erasures = (
                await session.execute(
                    select(Erasure)
                    .where(Erasure.tenant_id == tenant_id, Erasure.person_key == key)
                    .order_by(Erasure.requested_at)
                )
            ).scalars()
            erased = [erasure_out(row).model_dump(mode="json") for row in erasures]
        return {
            "goals": [
                {
                    **goal_snapshot(state).model_dump(mode="json"),
                    "roles": [
                        p.role for p in state.participants if normalise_email(str(p.email)) == email
                    ],
                }
                for state in states
            ],
            "progress_reports": progress,
            "erasures": erased,
        }
