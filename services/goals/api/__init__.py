"""HTTP routes of the goals service: thin, they validate, authorise and call the service layer."""

from fastapi import APIRouter

from services.goals.api import goals, ingest, milestones

router = APIRouter()
router.include_router(goals.router)
router.include_router(milestones.router)
router.include_router(ingest.router)

__all__ = ["router"]
