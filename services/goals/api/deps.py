"""Dependencies and helpers every goals route shares: credentials, headers, ETags."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Response

from services.goals.ingest.service import BatchIngestor
from services.goals.responses import GoalOut
from services.goals.schemas import REF_PATTERN
from services.goals.service import GoalsService
from services.goals.work import etag
from shared.auth.tokens import Principal
from shared.events.catalog.goals import GoalSnapshot
from shared.http.deps import from_app_state
from shared.http.idempotency import KEY_PATTERN
from shared.http.ratelimit import rate_limited
from shared.http.security import require

Reader = Annotated[Principal, Depends(require("goals:read"))]
Writer = Annotated[Principal, Depends(require("goals:write"))]
Ingesting = Annotated[Principal, Depends(rate_limited("goals:write"))]
"""A writer whose request counts against its tenant's ingestion rate (429 beyond it)."""


Service = Annotated[GoalsService, Depends(from_app_state("goals"))]
Ingestor = Annotated[BatchIngestor, Depends(from_app_state("ingestor"))]
ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
GoalId = Annotated[str, Path(pattern=ID_PATTERN, description="The goal's id.")]
MilestoneId = Annotated[str, Path(pattern=ID_PATTERN, description="The milestone's id.")]
ExternalRefPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=REF_PATTERN,
        description="The integrator's own id of the goal.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description='The goal\'s ETag (e.g. "3") as last read; a stale one answers 412.',
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN.pattern,
        description="Retry-safe POST: the same key and body replays the first answer; "
        "the same key with another body answers 422; kept 24 hours.",
    ),
]


def goal_response(snapshot: GoalSnapshot, response: Response) -> GoalOut:
    """The goal as the API shows it, with its version as ETag."""
    response.headers["ETag"] = etag(snapshot.version)
    return GoalOut.of(snapshot)
