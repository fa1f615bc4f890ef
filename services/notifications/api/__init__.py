"""HTTP routes of the notifications service: thin, they validate, authorise, call the services."""

from fastapi import APIRouter

from services.notifications.api.email import router as email_router
from services.notifications.api.endpoints import router as endpoints_router
from services.notifications.api.operations import router as operations_router

router = APIRouter()
router.include_router(endpoints_router)
router.include_router(operations_router)
router.include_router(email_router)

__all__ = ["router"]
