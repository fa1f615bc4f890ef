"""Request and response models of the notifications API."""

from __future__ import annotations

from datetime import datetime

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

EventTypeFilter = str


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(examples=["https://example.com/webhooks/followthrough"])
    description: str | None = Field(default=None, max_length=500)
    event_types: list[EventTypeFilter] = Field(
        default_factory=list,
        max_length=100,
        description="Event types to receive; 'checkin.*' matches a family; empty means all.",
        examples=[["milestone.completed", "checkin.*"]],
    )
    enabled: bool = True


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_...). Shown only in this response; store it now."
    )
