"""Building and serving service apps in-process, with settings a test owns."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI

from shared.settings import ServiceSettings
from tests.support.receiver import serve_asgi

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def make_settings(
    cls: type[SettingsT],
    *,
    data_dir: Path,
    bootstrap: str,
    topic_prefix: str,
    keys_file: Path,
    **overrides: Any,
) -> SettingsT:
    """Settings for one test: its own data folder, topics and keys; nothing from the environment."""
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_topic_prefix": topic_prefix,
        "auth_keys_file": keys_file,
        "log_format": "json",
        "outbox_poll_seconds": 0.5,
        # Tansu holds a group join for half the session timeout; keep tests quick.
        "kafka_session_timeout_ms": 3000,
        "kafka_heartbeat_interval_ms": 500,
    }
    values.update(overrides)
    return cls(_env_file=None, **values)


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Run the app (lifespan included) under uvicorn on a (free) loopback port; yields its URL."""
    async with serve_asgi(app, port) as port:
        yield f"http://127.0.0.1:{port}"
