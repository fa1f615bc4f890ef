"""The three services in-process over real HTTP, on SQLite, for tests about the API's edges.

Security and bad-input tests are about who may do what and what is refused,
not about storage, so they run on SQLite only (the database-backed behaviour
has its own tests on both backends). Test folders re-export these fixtures
from their conftest.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from services.goals.app import create_app as create_goals
from services.goals.settings import GoalsSettings
from services.notifications.app import create_app as create_notifications
from services.notifications.settings import NotificationsSettings
from services.sessions.app import create_app as create_sessions
from services.sessions.settings import SessionsSettings
from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.settings import ServiceSettings
from tests.support.apps import make_settings, serving

SettingsFactory = Callable[..., Any]


@pytest.fixture
def sqlite_settings(
    broker: TansuBroker, topic_prefix: str, keys_file: Path, tmp_path: Path
) -> SettingsFactory:
    def build(cls: type[ServiceSettings], **overrides: Any) -> ServiceSettings:
        return make_settings(
            cls,
            data_dir=tmp_path / "data",
            bootstrap=broker.bootstrap_servers,
            topic_prefix=topic_prefix,
            keys_file=keys_file,
            **overrides,
        )

    return build


@dataclass
class Stack:
    """The three services, each served on its own loopback port."""

    apps: dict[str, FastAPI]
    urls: dict[str, str]


StackFactory = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def stack(sqlite_settings: SettingsFactory) -> StackFactory:
    @contextlib.asynccontextmanager
    async def start(**overrides: dict[str, Any]) -> AsyncIterator[Stack]:
        ports = {name: free_port() for name in ("goals", "sessions", "notifications")}
        goals_overrides = {
            # Goals gathers a person's export from the other two.
            "sessions_url": f"http://127.0.0.1:{ports['sessions']}",
            "notifications_url": f"http://127.0.0.1:{ports['notifications']}",
            **overrides.get("goals", {}),
        }
        apps = {
            "goals": create_goals(sqlite_settings(GoalsSettings, **goals_overrides)),
            "sessions": create_sessions(
                sqlite_settings(SessionsSettings, **overrides.get("sessions", {}))
            ),
            "notifications": create_notifications(
                sqlite_settings(
                    NotificationsSettings,
                    webhook_allow_http=True,
                    webhook_allowed_networks=["127.0.0.1/32"],
                    dispatch_poll_seconds=0.05,
                    **overrides.get("notifications", {}),
                )
            ),
        }
        async with (
            serving(apps["goals"], ports["goals"]) as goals,
            serving(apps["sessions"], ports["sessions"]) as sessions,
            serving(apps["notifications"], ports["notifications"]) as notifications,
        ):
            yield Stack(
                apps, {"goals": goals, "sessions": sessions, "notifications": notifications}
            )

    return start
