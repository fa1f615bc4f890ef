"""Schemathesis against the goals OpenAPI, over real HTTP on both databases.

Every operation gets generated requests (bounded: a few hundred in all); no
answer may be a 5xx, and every answer must match the document: a documented
status, the documented content type and headers, a body that fits the schema.
Cases come from the documented examples as well as from the schemas, and
path ids are sometimes swapped for a real goal and milestone of the caller's
tenant, so the operations get past validation and 404 and really run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.services.goals.fixtures import GoalsApi
from tests.support.openapi_fuzz import fuzz

EXAMPLES_PER_OPERATION = 12


async def test_every_operation_answers_per_the_document(
    goals: GoalsApi, auth_headers: Callable[..., dict[str, str]]
) -> None:
    goal = await goals.create(external_ref="fuzz-goal")
    known = {
        "goal_id": goal["id"],
        "milestone_id": goal["milestones"][0]["id"],
        "external_ref": "fuzz-goal",
    }
    document = goals.app.openapi()
    failures, answered = await asyncio.to_thread(
        fuzz,
        document,
        str(goals.http.base_url).rstrip("/"),
        auth_headers(),
        known,
        examples_per_operation=EXAMPLES_PER_OPERATION,
    )
    assert not failures, "\n\n".join(failures)
    # The run reached every operation, and got past validation and 404 on most of them.
    # 19 goal routes, 2 erasure routes, the export, 2 retention routes
    assert len(answered) >= 24, sorted(answered)
    succeeded = [label for label, statuses in answered.items() if any(s < 300 for s in statuses)]
    assert len(succeeded) >= 12, dict(answered)
    assert sum(sum(c.values()) for c in answered.values()) <= 24 * EXAMPLES_PER_OPERATION + 50
