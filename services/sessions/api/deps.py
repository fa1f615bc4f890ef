"""Dependencies every sessions route shares: credentials, path parameters, services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from services.sessions.calendars.service import CalendarService
from services.sessions.coaching import CoachingService
from services.sessions.forecast import ForecastService
from services.sessions.ranking import RiskRanking
from services.sessions.service import CheckinService
from shared.auth.tokens import Principal
from shared.http.deps import from_app_state
from shared.http.ratelimit import rate_limited
from shared.http.security import require

Reader = Annotated[Principal, Depends(require("sessions:read"))]
Writer = Annotated[Principal, Depends(require("sessions:write"))]
Ingesting = Annotated[Principal, Depends(rate_limited("sessions:write"))]
GoalId = Annotated[str, Path(min_length=1, max_length=128, description="The goal's id.")]
SessionId = Annotated[str, Path(min_length=1, max_length=128, description="The session's id.")]

Calendars = Annotated[CalendarService, Depends(from_app_state("calendars"))]
Checkins = Annotated[CheckinService, Depends(from_app_state("checkins"))]
Coaching = Annotated[CoachingService, Depends(from_app_state("coaching"))]
Forecasts = Annotated[ForecastService, Depends(from_app_state("forecasts"))]
Ranking = Annotated[RiskRanking, Depends(from_app_state("ranking"))]
