"""Endpoint management rules: validation beyond the schema, secrets, tenant scoping."""

from __future__ import annotations

import uuid

from services.notifications.matching import valid_filter
from services.notifications.models import Endpoint
from services.notifications.repository import NotificationsRepository
from services.notifications.schemas import EndpointCreate, EndpointCreated, EndpointOut
from services.notifications.settings import NotificationsSettings
from services.notifications.signing import new_secret
from shared.events.envelope import utc_now
from shared.http.problems import ProblemError
from shared.runtime import ServiceRuntime


def endpoint_out(endpoint: Endpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


class EndpointsService:
    def __init__(self, runtime: ServiceRuntime, settings: NotificationsSettings) -> None:
        self._db = runtime.database
        self._settings = settings

    def _check_url(self, url: str) -> None:
        if url.startswith("http://") and not self._settings.webhook_allow_http:
            raise ProblemError(
                422,
                "url must use https (plain http is not allowed by this deployment)",
                slug="validation-error",
                errors=[{"field": "body.url", "message": "https required"}],
            )

    async def create(self, tenant_id: str, payload: EndpointCreate) -> EndpointCreated:
        url = str(payload.url)
        self._check_url(url)
        bad = [f for f in payload.event_types if not valid_filter(f)]
        if bad:
            raise ProblemError(
                422,
                f"invalid event type filter: {bad[0]!r}",
                slug="validation-error",
                errors=[{"field": "body.event_types", "message": f"invalid filter {bad[0]!r}"}],
            )
        now = utc_now()
        endpoint = Endpoint(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            url=url,
            description=payload.description,
            event_types=list(payload.event_types),
            enabled=payload.enabled,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction() as session:
            NotificationsRepository(session).add(endpoint)
        return EndpointCreated(**endpoint_out(endpoint).model_dump(), secret=endpoint.secret)

    async def get(self, tenant_id: str, endpoint_id: str) -> EndpointOut:
        async with self._db.reader() as session:
            endpoint = await NotificationsRepository(session).endpoint(tenant_id, endpoint_id)
        if endpoint is None:
            raise ProblemError(404, f"endpoint {endpoint_id} not found", slug="not-found")
        return endpoint_out(endpoint)
