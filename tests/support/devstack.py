"""``python -m shared.devstack`` (what ``make run`` runs) driven by tests, on free ports.

Each test gets a temporary working directory and data folder; every process
is found by the pid files the supervisor writes and checked by pid, and
whatever is still running at the end is stopped by its own pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shared.devstack.processes import free_port, process_cmdline, wait_until

SERVICES = ("goals", "sessions", "notifications", "console")
CHILDREN = ("broker", "smtp-sink", *SERVICES)


def gone(pid: int) -> bool:
    """No such process, or only its zombie (exited, waiting for whoever adopted it to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


@dataclass
class SupervisedStack:
    workdir: Path
    env: dict[str, str]
    ports: dict[str, int]
    runs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"stack-{len(self.runs)}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.devstack"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.runs.append(process)
        return process

    def wait_healthy(self, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        def healthy(service: str) -> bool:
            try:
                url = f"http://127.0.0.1:{self.ports[service]}/healthz"
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        run = self.runs.index(process)

        def supervisor_ready() -> bool:  # it checks too, one child after another
            return any('"event":"stack.ready"' in line for line in self.output(run))

        wait_until(
            lambda: all(healthy(service) for service in SERVICES),
            timeout=timeout,
            interval=0.2,
            what="every service's /healthz",
            alive=lambda: process.poll() is None,
        )
        wait_until(supervisor_ready, timeout=10, what="the supervisor's stack.ready")

    def pids(self) -> dict[str, int]:
        """The children's pids, from the supervisor's pid files."""
        found = {
            path.stem: int(path.read_text())
            for path in (self.data_dir / "run").glob("*.pid")
            if path.stem != "stack"
        }
        self.seen.update(found)
        return found

    def output(self, run: int) -> list[str]:
        return (self.workdir / f"stack-{run}.log").read_text().splitlines()

    def kill_everything(self) -> None:
        """Teardown: whatever is still running, by its own pid, if it is still ours."""
        for process in self.runs:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        for pid in self.seen.values():
            cmdline = process_cmdline(pid)
            if not gone(pid) and (
                "services." in cmdline or "tansu" in cmdline or "devstack" in cmdline
            ):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def supervised_stack(tmp_path: Path) -> Iterator[SupervisedStack]:
    ports = {name: free_port() for name in ("broker", "smtp", *SERVICES)}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(
            ("STACK_", "FOLLOWTHROUGH_", "GOALS_", "SESSIONS_", "NOTIFICATIONS_", "CONSOLE_")
        )
    }
    env.update({f"STACK_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env.update(STACK_DATA_DIR=str(tmp_path / "data"), STACK_LOG_FORMAT="json")
    env["FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS"] = "3000"  # quick group joins on Tansu
    built = SupervisedStack(tmp_path, env, ports)
    try:
        yield built
    finally:
        built.kill_everything()
