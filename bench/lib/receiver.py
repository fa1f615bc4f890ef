"""A webhook receiver for benchmarks, in its own process so it does not share the generator's loop.

It verifies every Standard Webhooks signature it gets (a delivery only counts
once it verifies), notes when it arrived and under which ledger key (the
event's correlation id), and hands the whole record over at the end on
``GET /__records``. Paths starting with ``/hang`` never answer within the
sender's timeout, for the isolation scenario.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.devstack.processes import free_port, wait_until


class _App:
    def __init__(self, secrets: list[str], hang_seconds: float) -> None:
        self.verifiers = [Webhook(secret) for secret in secrets]
        self.records: list[tuple[str, float, str, str]] = []
        self.unverified = 0
        self.hang_seconds = hang_seconds

    def add_secret(self, secret: str) -> None:
        self.verifiers.append(Webhook(secret))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrived = time.time()
        path: str = scope["path"]
        if path == "/__records":
            payload = orjson.dumps({"records": self.records, "unverified": self.unverified})
            await _answer(send, 200, payload)
            return
        if path == "/__secret":
            self.add_secret(body.decode())
            await _answer(send, 200, b"ok")
            return
        if path.startswith("/hang"):
            await asyncio.sleep(self.hang_seconds)
            await _answer(send, 200, b"late")
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if not self._verified(body, headers):
            self.unverified += 1
            await _answer(send, 400, b"bad signature")
            return
        key = orjson.loads(body).get("correlationid", "")
        self.records.append((key, arrived, headers.get("webhook-id", ""), path))
        await _answer(send, 200, b"ok")

    def _verified(self, body: bytes, headers: dict[str, str]) -> bool:
        for verifier in self.verifiers:
            try:
                verifier.verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _serve(port: int, secrets: list[str], hang_seconds: float) -> None:  # pragma: no cover
    config = uvicorn.Config(
        _App(secrets, hang_seconds),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=4096,
        limit_concurrency=None,
        timeout_keep_alive=60,
    )
    uvicorn.Server(config).run()


@dataclass
class Delivery:
    key: str
    at: float
    webhook_id: str
    path: str


class ReceiverProcess:
    def __init__(self, secrets: list[str] | None = None, *, hang_seconds: float = 15.0) -> None:
        self.port = free_port()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(self.port, list(secrets or []), hang_seconds), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process.start()

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/__records", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=20, what="benchmark receiver")

    def trust(self, secret: str) -> None:
        httpx.post(f"{self.url}/__secret", content=secret.encode(), timeout=5).raise_for_status()

    def deliveries(self) -> tuple[list[Delivery], int]:
        data = httpx.get(f"{self.url}/__records", timeout=30).json()
        return [Delivery(*row) for row in data["records"]], int(data["unverified"])

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
