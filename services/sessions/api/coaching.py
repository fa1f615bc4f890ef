"""Coaching session routes: schedule one, read it, and mark it held, a no-show or cancelled."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.sessions.api.deps import Coaching, Reader, SessionId, Writer
from services.sessions.schemas import SessionCreate, SessionOut, SessionReschedule
from shared.http.problems import problem_responses

router = APIRouter(prefix="/v1")


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Schedule a coaching session (reminders at its lead times)",
    responses=problem_responses(404, 409),
)
async def schedule_session(
    payload: SessionCreate, principal: Writer, service: Coaching, response: Response
) -> SessionOut:
    session = await service.schedule(principal.tenant_id, payload)
    response.headers["Location"] = f"/v1/sessions/{session.id}"
    return session


@router.get(
    "/sessions/{session_id}",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Read a coaching session",
    responses=problem_responses(404),
)
async def get_session(session_id: SessionId, principal: Reader, service: Coaching) -> SessionOut:
    return await service.get(principal.tenant_id, session_id)


@router.post(
    "/sessions/{session_id}/held",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Mark a session held",
    responses=problem_responses(404, 409),
)
async def session_held(session_id: SessionId, principal: Writer, service: Coaching) -> SessionOut:
    return await service.conclude(principal.tenant_id, session_id, "held")


@router.post(
    "/sessions/{session_id}/no-show",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Mark a session a no-show",
    responses=problem_responses(404, 409),
)
async def session_no_show(
    session_id: SessionId, principal: Writer, service: Coaching
) -> SessionOut:
    return await service.conclude(principal.tenant_id, session_id, "no_show")


@router.post(
    "/sessions/{session_id}/cancel",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Cancel a scheduled session",
    responses=problem_responses(404, 409),
)
async def session_cancel(session_id: SessionId, principal: Writer, service: Coaching) -> SessionOut:
    return await service.conclude(principal.tenant_id, session_id, "cancelled")


@router.post(
    "/sessions/{session_id}/reschedule",
    response_model=SessionOut,
    tags=["coaching sessions"],
    summary="Move a scheduled session (reminders re-planned, invites updated)",
    responses=problem_responses(404, 409),
)
async def session_reschedule(
    session_id: SessionId, payload: SessionReschedule, principal: Writer, service: Coaching
) -> SessionOut:
    return await service.reschedule(principal.tenant_id, session_id, payload)
