"""Tables of the sessions database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.tables import new_metadata
from shared.db.types import JsonType, UtcDateTime


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JsonType}


class GoalProjection(Base):
    """The sessions service's own copy of each goal, built from goal events (newer version wins)."""

    __tablename__ = "goal_projections"

    goal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonType)
    updated_at: Mapped[datetime]
