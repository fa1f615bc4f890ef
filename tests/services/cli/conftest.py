"""The three services in-process over real HTTP, and the CLI invoked against them.

SQLite only: the CLI talks to the services' APIs and the broker, never to a
database, so running it on both backends would test nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.goals.app import create_app as goals_app
from services.goals.settings import GoalsSettings
from services.notifications.app import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.sessions.app import create_app as sessions_app
from services.sessions.settings import SessionsSettings
from shared.devstack.broker import TansuBroker
from tests.support.apps import make_settings, serving

FOLLOWTHROUGH = Path(sys.executable).parent / "followthrough"
"""The console script pyproject installs."""


@dataclass
class Result:
    exit_code: int
    output: str
    """stdout and stderr together, as the operator sees them."""


@dataclass
class Stack:
    urls: dict[str, str]
    env: dict[str, str]
    bootstrap: str
    topic_prefix: str

    async def cli(self, *args: str) -> Result:
        """Run the installed ``followthrough`` command, as an operator would."""
        process = await asyncio.create_subprocess_exec(
            str(FOLLOWTHROUGH),
            *args,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(60):
            output, _ = await process.communicate()
        assert process.returncode is not None
        return Result(process.returncode, output.decode())


@pytest.fixture
async def stack(
    broker: TansuBroker, topic_prefix: str, keys_file: Path, tmp_path: Path
) -> AsyncIterator[Stack]:
    def settings(cls: type[Any], **overrides: Any) -> Any:
        return make_settings(
            cls,
            data_dir=tmp_path / "data",
            bootstrap=broker.bootstrap_servers,
            topic_prefix=topic_prefix,
            keys_file=keys_file,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'data' / cls.service_name}.db",
            **overrides,
        )

    apps = {
        "goals": goals_app(settings(GoalsSettings)),
        "sessions": sessions_app(settings(SessionsSettings)),
        "notifications": notifications_app(
            settings(
                NotificationsSettings,
                webhook_allow_http=True,
                webhook_allowed_networks=["127.0.0.1/32"],
                webhook_retry_schedule_seconds=[0.0],  # one attempt, then failed
                dispatch_poll_seconds=0.05,
                dispatch_stats_seconds=0.1,
            )
        ),
    }
    async with contextlib.AsyncExitStack() as running:
        urls = {name: await running.enter_async_context(serving(app)) for name, app in apps.items()}
        yield Stack(
            urls=urls,
            env={
                "FOLLOWTHROUGH_ENVIRONMENT": "test",
                "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
                "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "FOLLOWTHROUGH_KAFKA_TOPIC_PREFIX": topic_prefix,
                "FOLLOWTHROUGH_GOALS_URL": urls["goals"],
                "FOLLOWTHROUGH_SESSIONS_URL": urls["sessions"],
                "FOLLOWTHROUGH_NOTIFICATIONS_URL": urls["notifications"],
                "FOLLOWTHROUGH_TENANT": "acme",
            },
            bootstrap=broker.bootstrap_servers,
            topic_prefix=topic_prefix,
        )
