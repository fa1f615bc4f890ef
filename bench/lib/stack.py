"""The embedded stack for a benchmark: ``python -m shared.devstack`` on free ports, in a temp dir.

Run exactly as ``make run`` runs it (a supervisor process with the broker,
SMTP sink and services as children), with its output in a log file, and
optionally on PostgreSQL (one fresh database per service).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from shared.auth.keys import generate_key, write_jwks
from shared.auth.tokens import TokenIssuer
from shared.devstack.processes import free_port, wait_until

POSTGRES_ADMIN = os.environ.get(
    "FOLLOWTHROUGH_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class RunningStack:
    data_dir: Path
    broker: str
    smtp_port: int
    goals: str
    sessions: str
    notifications: str
    issuer: TokenIssuer
    log_file: Path

    def headers(self, tenant: str = "bench") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.mint(tenant)}"}


async def _pg(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def embedded_stack(
    *, postgres: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[RunningStack]:
    data_dir = Path(tempfile.mkdtemp(prefix="ft-bench-"))
    key = generate_key("bench-key")
    keys_file = data_dir / "keys" / "jwks.json"
    write_jwks(keys_file, {"keys": [key]})
    ports = {name: free_port() for name in ("broker", "smtp", "goals", "sessions", "notifications")}
    env = {
        **os.environ,
        "STACK_BROKER_PORT": str(ports["broker"]),
        "STACK_SMTP_PORT": str(ports["smtp"]),
        "STACK_GOALS_PORT": str(ports["goals"]),
        "STACK_SESSIONS_PORT": str(ports["sessions"]),
        "STACK_NOTIFICATIONS_PORT": str(ports["notifications"]),
        "STACK_DATA_DIR": str(data_dir),
        "STACK_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
        "FOLLOWTHROUGH_LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    databases: list[str] = []
    if postgres:
        for service in ("goals", "sessions", "notifications"):
            name = f"ft_bench_{service}_{uuid.uuid4().hex[:8]}"
            asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
            databases.append(name)
            base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace(
                "postgresql://", "postgresql+asyncpg://"
            )
            env[f"{service.upper()}_DATABASE_URL"] = f"{base}/{name}"
    log_file = data_dir / "stack.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.devstack"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    urls = {
        name: f"http://127.0.0.1:{ports[name]}" for name in ("goals", "sessions", "notifications")
    }
    try:

        def ready() -> bool:
            try:
                return all(
                    httpx.get(f"{url}/readyz", timeout=1).status_code == 200
                    for url in urls.values()
                )
            except httpx.HTTPError:
                return False

        wait_until(
            ready,
            timeout=90,
            interval=0.25,
            what="embedded stack",
            alive=lambda: process.poll() is None,
        )
        yield RunningStack(
            data_dir=data_dir,
            broker=f"127.0.0.1:{ports['broker']}",
            smtp_port=ports["smtp"],
            goals=urls["goals"],
            sessions=urls["sessions"],
            notifications=urls["notifications"],
            issuer=TokenIssuer(key, issuer="followthrough", audience="followthrough-api"),
            log_file=log_file,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for name in databases:
            with contextlib.suppress(Exception):
                asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
