"""The three services in-process over real HTTP (tests.support.stack), and the CLI run
against them as the installed console script.

SQLite only: the CLI talks to the services' APIs and the broker, never to a
database, so running it on both backends would test nothing more.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.devstack.broker import TansuBroker
from tests.support.stack import StackFactory, sqlite_settings, stack

__all__ = ["sqlite_settings", "stack"]

FOLLOWTHROUGH = Path(sys.executable).parent / "followthrough"
"""The console script pyproject installs."""


@dataclass
class Result:
    exit_code: int
    output: str
    """stdout and stderr together, as the operator sees them."""


@dataclass
class CliStack:
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
async def services(
    stack: StackFactory, broker: TansuBroker, topic_prefix: str, keys_file: Path
) -> AsyncIterator[CliStack]:
    notifications = {
        "webhook_retry_schedule_seconds": [0.0],  # one attempt, then failed
        "dispatch_stats_seconds": 0.1,
    }
    async with stack(notifications=notifications) as running:
        urls = running.urls
        yield CliStack(
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
