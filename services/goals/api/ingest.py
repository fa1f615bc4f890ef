"""``POST /v1/events``: batch ingestion of integrators' CloudEvents."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import TypeAdapter

from services.goals.api.deps import IdempotencyKey, Ingestor, Writer
from services.goals.ingest.schemas import BATCH_EXAMPLE, MAX_BATCH, BatchResult, IngestEvent
from shared.http.problems import ProblemError, problem_responses
from shared.http.ratelimit import charge

router = APIRouter(prefix="/v1", tags=["ingestion"])
BATCH_MEDIA_TYPES = ("application/json", "application/cloudevents-batch+json")


def batch_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The request body's schema and the component schemas it refers to."""
    schema = TypeAdapter(list[IngestEvent]).json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    schema.update(minItems=1, maxItems=MAX_BATCH)
    return schema, definitions


_BODY_SCHEMA, BATCH_COMPONENTS = batch_schema()
_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "description": f"1 to {MAX_BATCH} CloudEvents 1.0 in structured JSON (the CloudEvents "
        "JSON batch format), applied in order.",
        "content": {
            media: {"schema": _BODY_SCHEMA, "example": BATCH_EXAMPLE} for media in BATCH_MEDIA_TYPES
        },
    }
}


@router.post(
    "/events",
    response_model=BatchResult,
    summary="Ingest a batch of goal happenings",
    description="Each item answers accepted, duplicate (its source and id were accepted "
    "before) or rejected with the reason; one bad item never rejects the others. The batch "
    "is applied in order in one transaction. Every event an item causes carries the item's "
    "id as causation id and its correlationid (else the request's) as correlation id.",
    openapi_extra=_OPENAPI_BODY,
    responses=problem_responses(415, 429),
)
async def ingest_events(
    request: Request,
    principal: Writer,
    ingestor: Ingestor,
    idempotency_key: IdempotencyKey = None,
) -> BatchResult:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in BATCH_MEDIA_TYPES:
        raise ProblemError(
            415,
            f"send the batch as {' or '.join(BATCH_MEDIA_TYPES)}",
            slug="unsupported-media-type",
        )
    try:
        items = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise _invalid_body("body is not valid JSON") from None
    if not isinstance(items, list):
        raise _invalid_body("body must be a JSON array of CloudEvents")
    if not 1 <= len(items) <= MAX_BATCH:
        raise _invalid_body(f"a batch holds 1 to {MAX_BATCH} events, not {len(items)}")
    charge(request, principal.tenant_id, len(items))  # each event counts, not the request
    return await ingestor.ingest(principal.tenant_id, items)


def _invalid_body(message: str) -> ProblemError:
    return ProblemError(
        422,
        f"body: {message}",
        slug="validation-error",
        title="Request validation failed",
        errors=[{"field": "body", "message": message}],
    )
