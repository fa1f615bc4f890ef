"""The dead-letter API's answers (the console builds on this contract; keep it stable)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

DeadLetterStatus = Literal["dead", "redriven"]


class DeadLetterOut(BaseModel):
    id: str
    topic: str = Field(description="The source topic the record was consumed from.")
    partition: int
    offset: int
    reason: str = Field(
        description="malformed_json, invalid_event, invalid_event_data, unknown_event_type, "
        "oversize or handler_failed.",
        examples=["handler_failed"],
    )
    error: str = Field(description="What went wrong, as the consumer saw it.")
    event_id: str | None = Field(description="When the record could be read as far as its id.")
    event_type: str | None
    tenant_id: str | None = Field(
        description="The tenant the record names; null ones are visible to operators only."
    )
    consumer_group: str
    dead_lettered_at: datetime
    status: DeadLetterStatus
    redriven_at: datetime | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
