"""Dependencies every notifications route shares: credentials, path parameters, services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from services.notifications.email.service import EmailConfigService
from services.notifications.operations import OperationsService
from services.notifications.service import EndpointsService
from shared.auth.tokens import Principal
from shared.http.deps import from_app_state
from shared.http.security import require

Reader = Annotated[Principal, Depends(require("notifications:read"))]
Writer = Annotated[Principal, Depends(require("notifications:write"))]
EndpointId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,36}$")]

Endpoints = Annotated[EndpointsService, Depends(from_app_state("endpoints"))]
Email = Annotated[EmailConfigService, Depends(from_app_state("email"))]
Operations = Annotated[OperationsService, Depends(from_app_state("operations"))]
