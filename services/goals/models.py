"""Tables of the goals database."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.tables import new_metadata
from shared.db.types import JsonType, UtcDateTime


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JsonType}


class Goal(Base):
    __tablename__ = "goals"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_ref"),
        Index("ix_goals_tenant_updated", "tenant_id", "updated_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    external_ref: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    target_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    policy: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (Index("ix_milestones_goal", "goal_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    goal_id: Mapped[str] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    completed_at: Mapped[datetime | None]
    evidence_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
