"""The console against the real services, all in this process over real HTTP on loopback.

``stack`` starts goals, sessions and notifications (SQLite, the real broker,
topics and consumer groups of their own) and a console pointed at them, once
per test module: the console keeps no state of its own, and every test works
in tenants of its own, so the tests share the services without sharing data.
Sessions runs on a manual clock, so a test can let a check-in deadline pass.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_asyncio
from fastapi import FastAPI

from services.console.app import create_app as create_console
from services.console.settings import ConsoleSettings
from services.goals.app import create_app as create_goals
from services.goals.settings import GoalsSettings
from services.notifications.app import create_app as create_notifications
from services.notifications.settings import NotificationsSettings
from services.sessions.app import create_app as create_sessions
from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import SmtpSink
from tests.support.apps import make_settings, serving


@dataclass
class Stack:
    goals: str
    sessions: str
    notifications: str
    console: str
    clock: ManualClock
    sessions_app: FastAPI
    bootstrap: str
    prefix: str


def console_settings(keys_file: Path, data_dir: Path, **overrides: Any) -> ConsoleSettings:
    return make_settings(
        ConsoleSettings,
        data_dir=data_dir,
        bootstrap="127.0.0.1:1",
        topic_prefix="",
        keys_file=keys_file,
        **overrides,
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(
    broker: TansuBroker, keys_file: Path, tmp_path_factory: Any
) -> AsyncIterator[Stack]:
    data = tmp_path_factory.mktemp("console-stack")
    prefix = f"c{uuid.uuid4().hex[:10]}."
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))

    def settings(cls: Any, **overrides: Any) -> Any:
        return make_settings(
            cls,
            data_dir=data,
            bootstrap=broker.bootstrap_servers,
            topic_prefix=prefix,
            keys_file=keys_file,
            database_url=f"sqlite+aiosqlite:///{data / cls.service_name}.db",
            **overrides,
        )

    sink = SmtpSink(port=free_port(), directory=data / "mail")
    sessions_app = create_sessions(settings(SessionsSettings), clock=clock)
    notifications_app = create_notifications(
        settings(
            NotificationsSettings,
            webhook_allow_http=True,
            webhook_allowed_networks=["127.0.0.1/32"],
            webhook_retry_schedule_seconds=[0.0],
            dispatch_poll_seconds=0.05,
            webhook_timeout_seconds=5.0,
            smtp_port=sink.port,
        )
    )
    async with contextlib.AsyncExitStack() as started:
        sink.start()
        started.callback(sink.stop)
        goals = await started.enter_async_context(serving(create_goals(settings(GoalsSettings))))
        sessions = await started.enter_async_context(serving(sessions_app))
        notifications = await started.enter_async_context(serving(notifications_app))
        console_app = create_console(
            console_settings(
                keys_file,
                data,
                goals_url=goals,
                sessions_url=sessions,
                notifications_url=notifications,
                page_size=5,
            )
        )
        console = await started.enter_async_context(serving(console_app))
        yield Stack(
            goals=goals,
            sessions=sessions,
            notifications=notifications,
            console=console,
            clock=clock,
            sessions_app=sessions_app,
            bootstrap=broker.bootstrap_servers,
            prefix=prefix,
        )
