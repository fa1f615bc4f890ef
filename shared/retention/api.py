"""``GET``/``PUT /v1/retention``: a tenant's windows per kind of record (tenant-admin scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from shared.auth.tokens import TENANT_ADMIN_SCOPE, Principal
from shared.http.deps import from_app_state
from shared.http.problems import problem_responses
from shared.http.security import require
from shared.retention.purger import RetentionPurger
from shared.retention.store import Window

router = APIRouter(prefix="/v1", tags=["retention"])
Admin = Annotated[Principal, Depends(require(TENANT_ADMIN_SCOPE))]
Purger = Annotated[RetentionPurger, Depends(from_app_state("retention"))]


class WindowOut(BaseModel):
    kind: str
    seconds: int = Field(description="The window in force for this tenant.")
    default_seconds: int = Field(description="The deployment's window, used when none is set.")
    minimum_seconds: int = Field(description="The floor that keeps a guarantee (see `why`).")
    tenant_seconds: int | None = Field(description="This tenant's own window, if set.")
    per_tenant: bool = Field(description="False: deployment-wide, no tenant may change it.")
    why: str

    @classmethod
    def of(cls, window: Window) -> WindowOut:
        return cls(
            kind=window.rule.kind,
            seconds=int(window.effective.total_seconds()),
            default_seconds=int(window.default.total_seconds()),
            minimum_seconds=int(window.rule.minimum.total_seconds()),
            tenant_seconds=int(window.tenant.total_seconds()) if window.tenant else None,
            per_tenant=window.rule.per_tenant,
            why=window.rule.why,
        )


class RetentionOut(BaseModel):
    windows: list[WindowOut]


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    windows: dict[Annotated[str, Field(max_length=64)], int | None] = Field(
        max_length=50,
        description="Kind -> seconds to keep it; null resets the kind to the default.",
        examples=[{"attempts": 604800, "messages": None}],
    )


@router.get(
    "/retention",
    response_model=RetentionOut,
    summary="How long each kind of record is kept for this tenant",
    description="Needs the `tenant:admin` scope.",
    responses=problem_responses(403),
)
async def get_retention(principal: Admin, purger: Purger) -> RetentionOut:
    windows = await purger.store.windows(principal.tenant_id)
    return RetentionOut(windows=[WindowOut.of(w) for w in windows])


@router.put(
    "/retention",
    response_model=RetentionOut,
    summary="Set this tenant's windows",
    description="Only the kinds given change. A window below a kind's minimum, an unknown or "
    "deployment-wide kind answers 422 naming it. Needs the `tenant:admin` scope.",
    responses=problem_responses(403, 422),
)
async def put_retention(payload: RetentionIn, principal: Admin, purger: Purger) -> RetentionOut:
    await purger.store.set(principal.tenant_id, payload.windows)
    purger.wake.set()
    windows = await purger.store.windows(principal.tenant_id)
    return RetentionOut(windows=[WindowOut.of(w) for w in windows])
