"""Driving the sessions service in tests: goal events onto the real broker, a manual clock,
the app served over real HTTP, and its database read back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import func, select

from services.sessions.app import create_app
from services.sessions.models import GoalProjection, Occurrence, Timer
from services.sessions.settings import SessionsSettings
from services.sessions.timers.scheduler import Scheduler
from shared.clock import ManualClock
from shared.db.database import Database
from shared.db.tables import outbox
from shared.events import CloudEvent, build_event, parse_event
from shared.events.catalog.goals import (
    GoalCreated,
    GoalEventData,
    GoalSnapshot,
)
from tests.support.apps import serving

MENTEE = {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "Europe/Berlin"}
MENTOR = {"role": "mentor", "name": "Grace", "email": "grace@example.com"}
SPONSOR = {"role": "sponsor", "name": "Linus", "email": "linus@example.com"}


def snapshot(
    goal_id: str,
    *,
    version: int = 1,
    status: str = "active",
    policy: dict[str, Any] | None = None,
    at: datetime,
    participants: Sequence[dict[str, Any]] = (MENTEE, MENTOR, SPONSOR),
    milestones: Sequence[dict[str, Any]] = (),
) -> GoalSnapshot:
    return GoalSnapshot.model_validate(
        {
            "goal_id": goal_id,
            "title": f"Goal {goal_id[:8]}",
            "status": status,
            "version": version,
            "participants": list(participants),
            "policy": policy,
            "milestones": list(milestones),
            "created_at": at,
            "updated_at": at,
        }
    )


def goal_event(
    goal: GoalSnapshot,
    *,
    cls: type[CloudEvent] = GoalCreated,
    tenant: str = "acme",
    at: datetime,
) -> CloudEvent:
    return build_event(
        cls,
        GoalEventData(goal=goal),
        tenant_id=tenant,
        partition_key=goal.goal_id,
        source="/followthrough/goals",
        subject=f"goals/{goal.goal_id}",
        time=at,
    )


async def publish(bootstrap: str, topic: str, events: Sequence[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, event.to_json(), key=event.partitionkey.encode())
            for event in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_for(
    condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll an async condition until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            value = await condition()
            if value:
                return value
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover


@dataclass
class Sessions:
    """One running sessions app with its manual clock, HTTP client and database."""

    app: FastAPI
    clock: ManualClock
    http: httpx.AsyncClient
    settings: SessionsSettings
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> Database:
        database: Database = self.app.state.runtime.database
        return database

    @property
    def scheduler(self) -> Scheduler:
        scheduler: Scheduler = self.app.state.scheduler
        return scheduler

    async def projected(self, goal_id: str, version: int = 1) -> bool:
        async with self.database.reader() as session:
            found = await session.scalar(
                select(GoalProjection.version).where(GoalProjection.goal_id == goal_id)
            )
        return found is not None and found >= version

    async def wait_projected(self, goal_id: str, version: int = 1) -> None:
        await wait_for(lambda: self.projected(goal_id, version), what=f"goal {goal_id} projected")

    async def occurrences(self, goal_id: str) -> list[Occurrence]:
        async with self.database.reader() as session:
            rows = await session.execute(
                select(Occurrence).where(Occurrence.goal_id == goal_id).order_by(Occurrence.due_at)
            )
            return list(rows.scalars())

    async def timers(self, goal_id: str | None = None) -> list[Timer]:
        async with self.database.reader() as session:
            query = select(Timer).order_by(Timer.due_at, Timer.kind)
            if goal_id is not None:
                query = query.where(Timer.goal_id == goal_id)
            return list((await session.execute(query)).scalars())

    async def outbox_events(self) -> list[CloudEvent]:
        async with self.database.reader() as session:
            rows = await session.execute(select(outbox.c.payload).order_by(outbox.c.id))
            return [parse_event(row[0]) for row in rows]

    async def unsent(self) -> int:
        async with self.database.reader() as session:
            count = await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
        return int(count or 0)

    async def step_to(self, moment: datetime) -> None:
        """Move the clock to ``moment`` and wait until the scheduler fired all that is due."""
        await self.clock.set(moment)
        await self.scheduler.wait_caught_up(moment)


@contextlib.asynccontextmanager
async def running_sessions(
    settings: SessionsSettings, clock: ManualClock, headers: dict[str, str]
) -> AsyncIterator[Sessions]:
    if settings.consumer_group == "sessions":
        # One consumer group per test (the broker lives for the whole session): a
        # group shared across tests makes each join wait on the previous test's members.
        group = f"sessions-{settings.kafka_topic_prefix.rstrip('.')}"
        settings = settings.model_copy(update={"consumer_group": group})
    app = create_app(settings, clock=clock)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=15) as http:
        yield Sessions(app, clock, http, settings, headers)


def new_goal_id() -> str:
    return str(uuid.uuid4())


def weekly(days: Sequence[str], at: str = "09:00", **extra: Any) -> dict[str, Any]:
    return {
        "cadence": {"kind": "weekly", "weekdays": list(days)},
        "time_of_day": at,
        "timezone": "Europe/Berlin",
        **extra,
    }


def at_hour(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0)


ONE_MINUTE = timedelta(minutes=1)
