"""``make run``: the supervisor brings the whole stack up, and takes all of it down again.

The stack runs as ``python -m shared.devstack`` (what ``make run`` runs) on free
ports, with a temporary data folder and its own working directory. Every
process is found by the pid files the supervisor writes and checked by pid.
"""

from __future__ import annotations

import json
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

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

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
class Stack:
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
def stack(tmp_path: Path) -> Iterator[Stack]:
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
    built = Stack(tmp_path, env, ports)
    try:
        yield built
    finally:
        built.kill_everything()


def test_the_stack_comes_up_and_sigint_stops_every_process(stack: Stack) -> None:
    supervisor = stack.start()
    stack.wait_healthy(supervisor)
    pids = stack.pids()
    assert set(pids) == set(CHILDREN)
    assert not any(gone(pid) for pid in pids.values())

    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(60) == 0

    still_running = [name for name, pid in pids.items() if not gone(pid)]
    assert still_running == []
    assert list((stack.data_dir / "run").glob("*.pid")) == []
    assert (stack.data_dir / "goals.db").exists()
    lines = stack.output(0)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {record.get("service") for record in records} >= {"devstack", *SERVICES, "smtp-sink"}
    assert any(record.get("logger", "").startswith("uvicorn") for record in records)
    assert any(record.get("event") == "stack.ready" for record in records)
    # Each service shut down through its lifespan: consumers left, then the runtime.
    stopped = {(r.get("service"), r.get("event")) for r in records}
    for service in SERVICES:
        assert (service, "service.stopped") in stopped
    for consumer in ("sessions", "notifications"):
        assert (consumer, "consumer.stopped") in stopped


def test_a_killed_supervisor_takes_its_children_along_and_the_next_start_succeeds(
    stack: Stack,
) -> None:
    first = stack.start()
    stack.wait_healthy(first)
    pids = stack.pids()
    assert set(pids) == set(CHILDREN)

    first.send_signal(signal.SIGKILL)
    first.wait(10)
    wait_until(
        lambda: all(gone(pid) for pid in pids.values()),
        timeout=30,
        what="every child of the killed supervisor to exit",
    )
    assert {path.stem for path in (stack.data_dir / "run").glob("*.pid")} >= set(CHILDREN)

    second = stack.start()  # stale pid files and all
    stack.wait_healthy(second)
    new_pids = stack.pids()
    assert set(new_pids) == set(CHILDREN)
    assert not set(new_pids.values()) & set(pids.values())

    second.send_signal(signal.SIGINT)
    assert second.wait(60) == 0
    assert all(gone(pid) for pid in new_pids.values())


def test_ctrl_c_while_the_stack_is_still_starting_stops_everything(stack: Stack) -> None:
    supervisor = stack.start()
    wait_until(
        lambda: set(stack.pids()) == set(CHILDREN),
        timeout=20,
        what="every child to be spawned",
        alive=lambda: supervisor.poll() is None,
    )
    pids = stack.pids()

    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(60) == 0
    assert [name for name, pid in pids.items() if not gone(pid)] == []


def test_a_bad_stack_setting_stops_at_start_naming_the_variable(stack: Stack) -> None:
    stack.env["STACK_GOALS_PORT"] = "eighty"
    supervisor = stack.start()
    assert supervisor.wait(30) == 2
    output = "\n".join(stack.output(0))
    assert "STACK_GOALS_PORT" in output
    assert "Traceback" not in output
    assert not (stack.data_dir / "run").exists()
