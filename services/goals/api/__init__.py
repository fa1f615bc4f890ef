"""HTTP routes of the goals service: thin, they validate, authorise and call the service layer."""

from fastapi import APIRouter

from services.goals.api.goals import router as goals_router
from services.goals.api.ingest import router as ingest_router
from services.goals.api.milestones import router as milestones_router
from services.goals.privacy.api import router as privacy_router

router = APIRouter()
router.include_router(goals_router)
router.include_router(milestones_router)
router.include_router(ingest_router)
router.include_router(privacy_router)

__all__ = ["router"]
