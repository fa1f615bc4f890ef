"""Request and response models of the goals API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events.catalog.common import Participant
from shared.events.catalog.goals import GoalStatus, MilestoneStatus
from shared.events.catalog.policy import CheckinPolicy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MilestoneCreate(_Strict):
    title: str = Field(min_length=1, max_length=200, examples=["Run 5 km without stopping"])
    due_date: date | None = None


class MilestoneComplete(_Strict):
    evidence_note: str | None = Field(default=None, max_length=2000)


class GoalCreate(_Strict):
    external_ref: str | None = Field(default=None, min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=200, examples=["Run a half marathon"])
    description: str | None = Field(default=None, max_length=4000)
    category: str | None = Field(default=None, min_length=1, max_length=64)
    target_date: date | None = None
    status: Literal["draft", "active"] = "active"
    participants: list[Participant] = Field(min_length=1, max_length=50)
    policy: CheckinPolicy | None = None
    milestones: list[MilestoneCreate] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _one_mentee(self) -> Self:
        mentees = [p for p in self.participants if p.role == "mentee"]
        if len(mentees) != 1:
            raise ValueError("participants must include exactly one mentee")
        return self


class MilestoneOut(BaseModel):
    id: str
    title: str
    due_date: date | None
    status: MilestoneStatus
    completed_at: datetime | None
    evidence_note: str | None


class GoalOut(BaseModel):
    id: str
    external_ref: str | None
    title: str
    description: str | None
    category: str | None
    target_date: date | None
    status: GoalStatus
    version: int
    participants: list[Participant]
    policy: CheckinPolicy | None
    milestones: list[MilestoneOut]
    created_at: datetime
    updated_at: datetime
