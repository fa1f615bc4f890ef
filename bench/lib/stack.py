"""The embedded stack for a benchmark: ``python -m shared.devstack`` on free ports, in a temp dir.

Run exactly as ``make run`` runs it (a supervisor process with the broker,
SMTP sink and services as children), with its output in a log file, and
optionally on PostgreSQL (one fresh database per service).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
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

from bench.lib.receiver import ReceiverProcess
from shared.auth.keys import generate_key, write_jwks
from shared.auth.tokens import TokenIssuer
from shared.devstack.processes import free_port, wait_until

KEEP_DATA = bool(os.environ.get("FOLLOWTHROUGH_BENCH_KEEP_DATA"))
"""Leave each scenario's temporary directory (databases, logs) behind, for a post-mortem."""

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
    supervisor_pid: int

    def headers(self, tenant: str = "bench") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.mint(tenant)}"}

    def pid_of(self, service: str) -> int:
        """The pid of one service process (a child of the stack's supervisor)."""
        return self.child_pid(f"services.{service}")

    def child_pid(self, marker: str) -> int:
        """The pid of the supervisor's child whose command line contains ``marker``."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.supervisor_pid and any(marker.encode() in part for part in cmdline):
                return int(entry.name)
        raise LookupError(f"no {marker} process under the stack supervisor")

    def rss_mb(self, service: str) -> float:
        """Resident memory of one service process, in MiB."""
        for line in Path(f"/proc/{self.pid_of(service)}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise LookupError("VmRSS missing")


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
    ports = {
        name: free_port()
        for name in ("broker", "smtp", "goals", "sessions", "notifications", "console")
    }
    env = {
        **os.environ,
        "STACK_BROKER_PORT": str(ports["broker"]),
        "STACK_SMTP_PORT": str(ports["smtp"]),
        "STACK_GOALS_PORT": str(ports["goals"]),
        "STACK_SESSIONS_PORT": str(ports["sessions"]),
        "STACK_NOTIFICATIONS_PORT": str(ports["notifications"]),
        "STACK_CONSOLE_PORT": str(ports["console"]),
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
            supervisor_pid=process.pid,
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
        remove_data(data_dir)


@contextlib.contextmanager
def stack_with_receiver(
    *,
    postgres: bool = False,
    hang_seconds: float = 15.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[RunningStack, ReceiverProcess]]:
    """The embedded stack and a verifying webhook receiver, both stopped afterwards."""
    receiver = ReceiverProcess(hang_seconds=hang_seconds)
    receiver.start()
    try:
        with embedded_stack(postgres=postgres, extra_env=extra_env) as stack:
            yield stack, receiver
    finally:
        receiver.stop()


@dataclass
class SingleService:
    """One service process on its own (with its own broker), for scenarios that measure it alone."""

    url: str
    pid: int
    broker: str
    data_dir: Path
    issuer: TokenIssuer
    log_file: Path
    database_url: str

    def headers(self, tenant: str = "bench") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.mint(tenant)}"}

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise LookupError("VmRSS missing")


@contextlib.contextmanager
def single_service(
    service: str,
    *,
    postgres: bool = False,
    extra_env: dict[str, str] | None = None,
    database_url: str | None = None,
    data_dir: Path | None = None,
    keep_data: bool = False,
) -> Iterator[SingleService]:
    """``python -m services.<service>`` alone with a Tansu broker, on free ports.

    Everything else the service normally talks to is absent: what it publishes
    goes to the broker and nobody reads it. ``database_url`` runs it on an
    existing database (e.g. one a scenario prepared). The directory and
    database it made are removed afterwards unless ``keep_data`` (the caller
    then removes them: ``remove_data``, ``drop_database``).
    """
    made_dir = data_dir is None
    from shared.devstack.broker import TansuBroker
    from shared.devstack.processes import spawn, stop_process

    data_dir = data_dir or Path(tempfile.mkdtemp(prefix=f"ft-bench-{service}-"))
    key = generate_key("bench-key")
    keys_file = data_dir / "keys" / "jwks.json"
    write_jwks(keys_file, {"keys": [key]})
    broker = TansuBroker(log_file=data_dir / "broker.log")
    broker.start()
    prefix = service.upper()
    port = free_port()
    created: str | None = None
    if database_url is None and postgres:
        created = f"ft_bench_{service}_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg(f'CREATE DATABASE "{created}"'))
        base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        database_url = f"{base}/{created}"
    database_url = database_url or f"sqlite+aiosqlite:///{data_dir}/{service}.db"
    env = {
        **os.environ,
        f"{prefix}_PORT": str(port),
        f"{prefix}_HOST": "127.0.0.1",
        f"{prefix}_DATA_DIR": str(data_dir),
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
        **(extra_env or {}),
    }
    log_file = data_dir / f"{service}.log"
    with log_file.open("ab") as log:
        process = spawn([sys.executable, "-m", f"services.{service}"], env=env, stdout=log)
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(
            ready, timeout=120, interval=0.25, what=service, alive=lambda: process.poll() is None
        )
        yield SingleService(
            url=url,
            pid=process.pid,
            broker=broker.bootstrap_servers,
            data_dir=data_dir,
            issuer=TokenIssuer(key, issuer="followthrough", audience="followthrough-api"),
            log_file=log_file,
            database_url=database_url,
        )
    finally:
        stop_process(process, grace=30)
        broker.stop()
        if created and not keep_data:
            drop_database(database_url)
        if made_dir and not keep_data:
            remove_data(data_dir)


def drop_database(database_url: str) -> None:
    """Drop a PostgreSQL database a scenario made (nothing to do for SQLite)."""
    if database_url.startswith("postgresql"):
        name = database_url.rsplit("/", 1)[1]
        with contextlib.suppress(Exception):
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def remove_data(data_dir: Path) -> None:
    """A scenario's temporary directory (a 1,000,000-schedule database is GBs) goes."""
    if not KEEP_DATA:
        shutil.rmtree(data_dir, ignore_errors=True)
