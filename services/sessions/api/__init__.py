"""HTTP routes of the sessions service: thin, they validate, authorise and call the services."""

from fastapi import APIRouter

from services.sessions.api.calendars import router as calendars_router
from services.sessions.api.checkins import router as checkins_router
from services.sessions.api.coaching import router as coaching_router
from services.sessions.api.goals import router as goals_router
from services.sessions.api.links import router as links_router

router = APIRouter()
router.include_router(checkins_router)
router.include_router(goals_router)
router.include_router(coaching_router)
router.include_router(links_router)
router.include_router(calendars_router)

__all__ = ["router"]
