"""Service processes for end-to-end tests: real uvicorn processes on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from shared.devstack.processes import free_port, spawn, stop_process, wait_until

ENV_PREFIX = {"goals": "GOALS", "sessions": "SESSIONS", "notifications": "NOTIFICATIONS"}


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        prefix = ENV_PREFIX[self.name]
        env = {**os.environ, **self.env, f"{prefix}_PORT": str(self.port)}
        self._log = self.log_path.open("ab")
        self.process = spawn(
            [sys.executable, "-m", f"services.{self.name}"], env=env, stdout=self._log
        )
        process = self.process

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(
            healthy,
            timeout=timeout,
            interval=0.1,
            what=f"{self.name} /healthz",
            alive=lambda: process.poll() is None,
        )

    def stop(self) -> int | None:
        code = None
        if self.process is not None:
            code = stop_process(self.process, grace=15)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def log_lines(self) -> Iterator[dict[str, Any]]:
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                yield json.loads(line)
