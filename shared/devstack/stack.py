"""``make run``: the whole embedded stack in the foreground, as plain processes.

Starts the Tansu broker, the SMTP sink, the three services and the console
(which talks to the services over their HTTP APIs only), waits until
each answers, and on Ctrl-C or SIGTERM stops them all in reverse order. Every
child asks the kernel to signal it if this supervisor dies, and pid files
from a run that crashed are checked and cleaned up at the next start, so a
second ``make run`` never trips over the remains of the first.

A child that exits or is killed is started again, after a backoff that grows
with each crash, while the rest keep running; the broker too, on the same
address (it comes back empty, as a new cluster, and the services re-publish
their recent events to it). A child that crashes more than ``restart_limit``
times within ``restart_window_seconds`` is not restarted: the stack stops,
saying which child and why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.devstack.broker import TansuBroker
from shared.devstack.processes import (
    pid_alive,
    port_open,
    process_cmdline,
    spawn,
    stop_process,
    wait_until,
)
from shared.logs import LogFormat, configure_logging, get_logger

log = get_logger("devstack")


class StackSettings(BaseSettings):
    """Where the embedded stack listens and keeps its files (prefix ``STACK_``)."""

    model_config = SettingsConfigDict(env_prefix="STACK_", env_file=".env", extra="ignore")
    host: str = "127.0.0.1"
    broker_port: int = Field(default=9092, ge=1, le=65535)
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    goals_port: int = Field(default=8001, ge=1, le=65535)
    sessions_port: int = Field(default=8002, ge=1, le=65535)
    notifications_port: int = Field(default=8003, ge=1, le=65535)
    console_port: int = Field(default=8004, ge=1, le=65535)
    data_dir: Path = Path(".data")
    start_timeout: float = 60.0
    log_format: LogFormat = "auto"
    restart_limit: int = Field(default=5, ge=0, le=100)
    restart_window_seconds: float = Field(default=60.0, gt=0)


class StackInterrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was still starting."""


FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0


@dataclass
class CrashPolicy:
    """How long to wait before restarting a crashed child, and when to stop trying."""

    limit: int
    window: float
    _crashes: dict[str, deque[float]] = field(default_factory=dict)

    def delay_after_crash(self, name: str, now: float) -> float | None:
        """Seconds to wait before the restart; None once ``name`` crashes too often."""
        crashes = self._crashes.setdefault(name, deque())
        crashes.append(now)
        while now - crashes[0] > self.window:
            crashes.popleft()
        if len(crashes) > self.limit:
            return None
        delay: float = FIRST_RESTART_DELAY * 2 ** (len(crashes) - 1)
        return min(delay, MAX_RESTART_DELAY)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    health_path: str | None = None
    process: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.run_dir = settings.data_dir / "run"
        self.broker = TansuBroker(
            host=settings.host,
            port=settings.broker_port,
            log_file=settings.data_dir / "logs" / "broker.log",
        )
        self.children: list[Child] = []
        self._stopping = False
        self._crashes = CrashPolicy(settings.restart_limit, settings.restart_window_seconds)
        self._broker_restart_at: float | None = None

    def _service_env(self, prefix: str, port: int) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            {
                f"{prefix}_PORT": str(port),
                f"{prefix}_HOST": s.host,
                f"{prefix}_DATA_DIR": str(s.data_dir),
                f"{prefix}_LOG_FORMAT": s.log_format,
                f"{prefix}_PUBLIC_BASE_URL": env.get(
                    f"{prefix}_PUBLIC_BASE_URL", f"http://{s.host}:{port}"
                ),
                "NOTIFICATIONS_SESSIONS_PUBLIC_URL": env.get(
                    "NOTIFICATIONS_SESSIONS_PUBLIC_URL", f"http://{s.host}:{s.sessions_port}"
                ),
                # Goals gathers a person's export from the other two (GET /v1/people/export).
                "GOALS_SESSIONS_URL": env.get(
                    "GOALS_SESSIONS_URL", f"http://{s.host}:{s.sessions_port}"
                ),
                "GOALS_NOTIFICATIONS_URL": env.get(
                    "GOALS_NOTIFICATIONS_URL", f"http://{s.host}:{s.notifications_port}"
                ),
                "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
                "NOTIFICATIONS_WEBHOOK_ALLOW_HTTP": env.get(
                    "NOTIFICATIONS_WEBHOOK_ALLOW_HTTP", "true"
                ),
                "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": env.get(
                    "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.1/32"]'
                ),
                "NOTIFICATIONS_SMTP_HOST": env.get("NOTIFICATIONS_SMTP_HOST", s.host),
                "NOTIFICATIONS_SMTP_PORT": env.get("NOTIFICATIONS_SMTP_PORT", str(s.smtp_port)),
            }
        )
        return env

    def plan(self) -> None:
        s = self.settings
        python = sys.executable
        self.children = [
            Child(
                "smtp-sink",
                [
                    python,
                    "-m",
                    "shared.devstack.smtp_sink",
                    "--host",
                    s.host,
                    "--port",
                    str(s.smtp_port),
                    "--dir",
                    str(s.data_dir / "mail"),
                    "--log-format",
                    s.log_format,
                ],
                dict(os.environ),
                s.smtp_port,
            ),
            Child(
                "goals",
                [python, "-m", "services.goals"],
                self._service_env("GOALS", s.goals_port),
                s.goals_port,
                "/healthz",
            ),
            Child(
                "sessions",
                [python, "-m", "services.sessions"],
                self._service_env("SESSIONS", s.sessions_port),
                s.sessions_port,
                "/healthz",
            ),
            Child(
                "notifications",
                [python, "-m", "services.notifications"],
                self._service_env("NOTIFICATIONS", s.notifications_port),
                s.notifications_port,
                "/healthz",
            ),
            Child(
                "console",
                [python, "-m", "services.console"],
                self._console_env(),
                s.console_port,
                "/healthz",
            ),
        ]

    def _console_env(self) -> dict[str, str]:
        s = self.settings
        env = self._service_env("CONSOLE", s.console_port)
        for service, port in (
            ("GOALS", s.goals_port),
            ("SESSIONS", s.sessions_port),
            ("NOTIFICATIONS", s.notifications_port),
        ):
            env.setdefault(f"CONSOLE_{service}_URL", f"http://{s.host}:{port}")
        return env

    def clean_stale(self) -> None:
        """Stop what a crashed earlier run left behind, found through its pid files."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        here = str(Path.cwd())
        for pid_file in self.run_dir.glob("*.pid"):
            try:
                pid = int(pid_file.read_text().strip())
            except ValueError:
                pid_file.unlink(missing_ok=True)
                continue
            cmdline = process_cmdline(pid)
            ours = any(marker in cmdline for marker in ("services.", "shared.devstack", "tansu"))
            if pid != os.getpid() and pid_alive(pid) and ours and _cwd_of(pid) == here:
                log.warning("stack.stale_process.stopping", pid=pid, name=pid_file.stem)
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            pid_file.unlink(missing_ok=True)

    def _write_pid(self, name: str, pid: int) -> None:
        (self.run_dir / f"{name}.pid").write_text(str(pid))

    def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.clean_stale()
        self._write_pid("stack", os.getpid())
        for port, what in [
            (s.broker_port, "broker"),
            (s.smtp_port, "smtp sink"),
            (s.goals_port, "goals"),
            (s.sessions_port, "sessions"),
            (s.notifications_port, "notifications"),
            (s.console_port, "console"),
        ]:
            if port_open(s.host, port):
                raise SystemExit(f"port {s.host}:{port} for the {what} is already in use")
        log.info("stack.broker.starting", port=s.broker_port)
        self.broker.start(timeout=s.start_timeout)
        assert self.broker.pid is not None
        self._write_pid("broker", self.broker.pid)
        self.plan()
        for child in self.children:
            child.process = spawn(child.argv, env=child.env)
            self._write_pid(child.name, child.process.pid)
        for child in self.children:
            self._wait_ready(child)
        log.info(
            "stack.ready",
            broker=self.broker.bootstrap_servers,
            smtp=f"{s.host}:{s.smtp_port}",
            goals=f"http://{s.host}:{s.goals_port}",
            sessions=f"http://{s.host}:{s.sessions_port}",
            notifications=f"http://{s.host}:{s.notifications_port}",
            console=f"http://{s.host}:{s.console_port}",
            mail_dir=str(s.data_dir / "mail"),
            hint="make token TENANT=acme",
        )

    def _wait_ready(self, child: Child) -> None:
        process = child.process
        assert process is not None
        host = self.settings.host

        def ready() -> bool:
            if self._stopping:
                raise StackInterrupted(f"stopped while waiting for {child.name}")
            if child.health_path is None:
                return port_open(host, child.port)
            try:
                url = f"http://{host}:{child.port}{child.health_path}"
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(
            ready,
            timeout=self.settings.start_timeout,
            interval=0.2,
            what=child.name,
            alive=lambda: process.poll() is None,
        )

    def watch(self) -> int:
        """Keep every child running until a signal arrives; returns the exit code.

        1 when a child crashed too often to go on restarting it.
        """
        while not self._stopping:
            now = time.monotonic()
            for child in self.children:
                if not self._keep_child(child, now):
                    return 1
            if not self._keep_broker(now):
                return 1
            time.sleep(0.2)
        return 0

    def _keep_child(self, child: Child, now: float) -> bool:
        process = child.process
        if child.restart_at is None and process is not None and process.poll() is not None:
            delay = self._crashes.delay_after_crash(child.name, now)
            if delay is None:
                return self._give_up(child.name, process.returncode)
            log.error(
                "stack.child.exited", name=child.name, code=process.returncode, restart_in=delay
            )
            child.restart_at = now + delay
        if child.restart_at is not None and now >= child.restart_at:
            child.restart_at = None
            child.process = spawn(child.argv, env=child.env)
            self._write_pid(child.name, child.process.pid)
            log.warning("stack.child.restarted", name=child.name, pid=child.process.pid)
        return True

    def _keep_broker(self, now: float) -> bool:
        process = self.broker.process
        if self._broker_restart_at is None and (process is None or process.poll() is not None):
            code = process.returncode if process is not None else None
            self.broker.stop()  # reaps it and closes its log
            delay = self._crashes.delay_after_crash("broker", now)
            if delay is None:
                return self._give_up("broker", code)
            log.error("stack.broker.exited", code=code, restart_in=delay)
            self._broker_restart_at = now + delay
        if self._broker_restart_at is not None and now >= self._broker_restart_at:
            self._broker_restart_at = None
            try:
                self.broker.start(timeout=self.settings.start_timeout)
            except (TimeoutError, RuntimeError) as error:
                # No process now: the next pass counts this as another crash.
                log.error("stack.broker.restart_failed", error=str(error))
                self.broker.stop()
                return True
            assert self.broker.pid is not None
            self._write_pid("broker", self.broker.pid)
            log.warning(
                "stack.broker.restarted",
                pid=self.broker.pid,
                cluster_id=self.broker.cluster_id,
                address=self.broker.bootstrap_servers,
            )
        return True

    def _give_up(self, name: str, code: int | None) -> bool:
        s = self.settings
        log.error(
            "stack.child.crashing",
            name=name,
            code=code,
            crashes=s.restart_limit + 1,
            within_seconds=s.restart_window_seconds,
            hint=f"see its lines in the log above; {s.data_dir / 'logs'} holds the broker's",
        )
        return False

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process is not None:
                stop_process(child.process, grace=15)
                log.info("stack.child.stopped", name=child.name, code=child.process.returncode)
            (self.run_dir / f"{child.name}.pid").unlink(missing_ok=True)
        self.broker.stop()
        (self.run_dir / "broker.pid").unlink(missing_ok=True)
        (self.run_dir / "stack.pid").unlink(missing_ok=True)
        log.info("stack.stopped")


def _cwd_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def load_stack_settings() -> StackSettings:
    """The stack's settings, or a message naming each bad ``STACK_*`` variable and exit 2."""
    try:
        return StackSettings()
    except ValidationError as error:
        lines = ["invalid configuration for the embedded stack:"]
        for item in error.errors(include_url=False):
            field = str(item["loc"][0]) if item.get("loc") else "*"
            lines.append(f"  STACK_{field.upper()}: {item['msg']}")
        print("\n".join(lines), file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


def main() -> None:
    settings = load_stack_settings()
    configure_logging("devstack", fmt=settings.log_format)
    stack = Stack(settings)
    signal.signal(signal.SIGINT, stack.request_stop)
    signal.signal(signal.SIGTERM, stack.request_stop)
    code = 1
    try:
        stack.start()
        code = stack.watch()
    except StackInterrupted as interrupted:
        log.info("stack.start.interrupted", reason=str(interrupted))
        code = 0
    except (TimeoutError, RuntimeError) as error:
        log.error("stack.start.failed", error=str(error))
    finally:
        stack.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
