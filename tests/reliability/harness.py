"""The reliability harness: the three services as real processes, killed and restarted at will.

Each service is a ``python -m services.<name>`` process on a free port with its
own database; the webhook receiver runs in the test's event loop, so process
starts and stops run in threads (``asyncio.to_thread``) to keep it answering.
Faults come from outside (``kill -9`` by pid, the broker stopped by pid) or
from the test-only fault points (``FOLLOWTHROUGH_TEST_FAULTS``, see
``shared/faults.py``) where a window is too narrow to hit from outside.

The ledger counts every webhook by its ``webhook-id``: each expected event
must arrive at least once (lost = expected but never delivered), a repeat is
a duplicate (allowed: delivery is at least once, and a repeat carries the
same id and body), and anything never expected is a bug.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from shared.faults import ENV_VARIABLE
from tests.support.receiver import Receiver
from tests.support.services import ServiceProcess

SERVICES = ("goals", "sessions", "notifications")


def stack_environment(
    bootstrap: str, topic_prefix: str, keys_file: Path, data_dir: Path, **extra: str
) -> dict[str, str]:
    """What every service process of a reliability run gets (short timeouts, loopback hooks)."""
    return {
        "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FOLLOWTHROUGH_KAFKA_TOPIC_PREFIX": topic_prefix,
        "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
        "FOLLOWTHROUGH_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_DATA_DIR": str(data_dir),
        "FOLLOWTHROUGH_ENVIRONMENT": "test",
        "FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "FOLLOWTHROUGH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "FOLLOWTHROUGH_OUTBOX_POLL_SECONDS": "0.5",
        "NOTIFICATIONS_WEBHOOK_ALLOW_HTTP": "true",
        "NOTIFICATIONS_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        "NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS": "5",
        # A killed dispatcher's claims come free after this long, not after two minutes.
        "NOTIFICATIONS_DISPATCH_LEASE_SECONDS": "4",
        "NOTIFICATIONS_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0, 1, 2, 5, 10, 20, 30, 60]",
        "NOTIFICATIONS_SMTP_PORT": "9",  # no mail in these runs: rules send none
        **extra,
    }


@dataclass
class Stack:
    env: dict[str, str]
    logs: Path
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)

    def url(self, name: str) -> str:
        return self.processes[name].url

    async def start(self, name: str, *, faults: str = "", **extra: str) -> ServiceProcess:
        """Start (or restart, on the same port) one service, optionally with fault points armed."""
        previous = self.processes.get(name)
        env = {**self.env, **extra, ENV_VARIABLE: faults}
        process = ServiceProcess(name, env, self.logs / f"{name}.log")
        if previous is not None:
            process.port = previous.port
            self.restarts[name] += 1
        self.processes[name] = process
        await asyncio.to_thread(process.start, 60.0)
        return process

    async def kill(self, name: str) -> None:
        """``kill -9``, as a crash would."""
        await asyncio.to_thread(self.processes[name].kill)

    async def exited(self, name: str, timeout: float = 60.0) -> int:
        """Wait for a process to end by itself (a fault point); returns its exit code."""
        process = self.processes[name].process
        assert process is not None
        code = await asyncio.to_thread(process.wait, timeout)
        self.processes[name].process = None
        return code

    async def stop_all(self) -> None:
        await asyncio.gather(
            *(asyncio.to_thread(p.stop) for p in self.processes.values() if p.process)
        )

    def log_lines(self, name: str) -> list[dict[str, Any]]:
        return list(self.processes[name].log_lines())


async def register_endpoint(http: httpx.AsyncClient, stack: Stack, receiver: Receiver) -> str:
    """A webhook endpoint for every event type; returns its secret."""
    created = await http.post(
        f"{stack.url('notifications')}/v1/endpoints",
        json={"url": f"{receiver.url}/ledger", "event_types": ["*"]},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["secret"])


@dataclass
class Ledger:
    """Deliveries counted by webhook-id against what was expected."""

    expected: set[str]
    deliveries: Counter[str]
    bodies: dict[str, set[bytes]]

    @classmethod
    def of(cls, receiver: Receiver, expected: Iterable[str], secret: str) -> Ledger:
        verifier = Webhook(secret)
        deliveries: Counter[str] = Counter()
        bodies: dict[str, set[bytes]] = {}
        for request in receiver.requests:
            verifier.verify(request.body, request.headers)  # every delivery is signed
            webhook_id = request.headers["webhook-id"]
            assert json.loads(request.body)["id"] == webhook_id
            deliveries[webhook_id] += 1
            bodies.setdefault(webhook_id, set()).add(request.body)
        return cls(set(expected), deliveries, bodies)

    @property
    def lost(self) -> set[str]:
        return self.expected - self.deliveries.keys()

    @property
    def unexpected(self) -> set[str]:
        return self.deliveries.keys() - self.expected

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in self.deliveries.values())

    def complete(self) -> bool:
        return not self.lost

    def counts(self) -> dict[str, int]:
        """The figures a results row takes (``record_result(fault, **ledger.counts(), ...)``)."""
        return {
            "events": len(self.expected),
            "delivered": len(self.deliveries),
            "lost": len(self.lost),
            "duplicates": self.duplicates,
        }

    def check(self) -> None:
        assert not self.lost, f"{len(self.lost)} lost: {sorted(self.lost)[:10]}"
        assert not self.unexpected, f"unexpected deliveries: {sorted(self.unexpected)[:10]}"
        # A duplicate is the same message again: same webhook-id, same body.
        assert all(len(bodies) == 1 for bodies in self.bodies.values())


async def await_ledger(
    receiver: Receiver, expected: set[str], secret: str, *, timeout: float, what: str
) -> float:
    """Wait until every expected event was delivered; on timeout, name what is missing."""
    try:
        return await wait_for(
            lambda: Ledger.of(receiver, expected, secret).complete(), timeout=timeout, what=what
        )
    except AssertionError as error:
        lost = sorted(Ledger.of(receiver, expected, secret).lost)
        raise AssertionError(f"{error}: {len(lost)} not delivered: {lost[:20]}") from None


async def wait_for(
    check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25
) -> float:
    """Wait until ``check()`` (sync or async) is truthy; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        outcome = check()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def goal_event_ids(
    http: httpx.AsyncClient, goals_url: str, goal_ids: Iterable[str]
) -> set[str]:
    """Every event goals committed for these goals (its history, written with the outbox)."""
    ids: set[str] = set()
    for goal_id in goal_ids:
        cursor: str | None = None
        while True:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            page = await http.get(f"{goals_url}/v1/goals/{goal_id}/events", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            ids.update(item["id"] for item in body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                break
    return ids
