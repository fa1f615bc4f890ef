"""A counting SMTP server in its own process (aiosmtpd), for the email scenario.

It accepts every message and counts sessions (one EHLO/HELO per connection)
and messages, with the time of the first and last message, in shared memory
the benchmark reads: so the scenario sees how many connections the service's
SMTP pool opened to send what it sent.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from shared.devstack.processes import free_port, port_open, wait_until


class _Counting:
    def __init__(self, counters: dict[str, Synchronized[Any]]) -> None:
        self.counters = counters

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.counters["sessions"].get_lock():
            self.counters["sessions"].value += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        with self.counters["messages"].get_lock():
            self.counters["messages"].value += 1
            if self.counters["first_at"].value == 0:
                self.counters["first_at"].value = now
            self.counters["last_at"].value = now
        return "250 OK"


def _serve(port: int, counters: dict[str, Synchronized[Any]]) -> None:  # pragma: no cover
    from aiosmtpd.controller import Controller

    controller = Controller(_Counting(counters), hostname="127.0.0.1", port=port)
    controller.start()
    while True:
        time.sleep(3600)


class CountingSmtp:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.counters: dict[str, Synchronized[Any]] = {
            "sessions": context.Value("q", 0),
            "messages": context.Value("q", 0),
            "first_at": context.Value("d", 0.0),
            "last_at": context.Value("d", 0.0),
        }
        self._process = context.Process(target=_serve, args=(self.port, self.counters), daemon=True)

    def start(self) -> None:
        self._process.start()
        wait_until(lambda: port_open("127.0.0.1", self.port), timeout=20, what="SMTP server")

    def value(self, name: str) -> Any:
        return self.counters[name].value

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
