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
from urllib.parse import parse_qs

import httpx
import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.devstack.processes import free_port, wait_until


class _App:
    def __init__(self, secrets: list[str], hang_seconds: float) -> None:
        self.verifiers = [Webhook(secret) for secret in secrets]
        self.by_path: dict[str, Webhook] = {}
        self.records: list[tuple[str, float, str, str]] = []
        self.by_phase: dict[str, list[tuple[str, float, str, str]]] = {}
        """Records by the phase of their key (``<phase>-<n>``): the phase polls its count
        several times a second, which must not cost a scan of every record so far."""
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
            if message["type"] == "http.disconnect":
                return  # the sender gave up mid-request: nothing was delivered
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrived = time.time()
        path: str = scope["path"]
        if path == "/__records":
            records = self._matching(_query(scope).get("prefix", ""))
            payload = orjson.dumps({"records": records, "unverified": self.unverified})
            await _answer(send, 200, payload)
            return
        if path == "/__count":
            count = len(self._matching(_query(scope).get("prefix", "")))
            await _answer(send, 200, orjson.dumps({"count": count}))
            return
        if path == "/__secret":
            target = _query(scope).get("path")
            if target:  # a secret for one path only: no trying every endpoint's secret
                self.by_path[target] = Webhook(body.decode())
            else:
                self.add_secret(body.decode())
            await _answer(send, 200, b"ok")
            return
        if path.startswith("/hang"):
            await asyncio.sleep(self.hang_seconds)
            await _answer(send, 200, b"late")
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if not self._verified(body, headers, path):
            self.unverified += 1
            await _answer(send, 400, b"bad signature")
            return
        key = orjson.loads(body).get("correlationid", "")
        record = (key, arrived, headers.get("webhook-id", ""), path)
        self.records.append(record)
        self.by_phase.setdefault(key.rpartition("-")[0], []).append(record)
        await _answer(send, 200, b"ok")

    def _matching(self, prefix: str) -> list[tuple[str, float, str, str]]:
        if not prefix:
            return self.records
        if prefix.endswith("-") and "-" not in prefix[:-1]:
            return self.by_phase.get(prefix[:-1], [])
        return [r for r in self.records if r[0].startswith(prefix)]

    def _verified(self, body: bytes, headers: dict[str, str], path: str) -> bool:
        own = self.by_path.get(path)
        for verifier in [own] if own is not None else self.verifiers:
            try:
                verifier.verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw: bytes = scope.get("query_string", b"")
    return {k: v[-1] for k, v in parse_qs(raw.decode()).items()}


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

    @property
    def pid(self) -> int:
        assert self._process.pid is not None, "not started"
        return self._process.pid

    def trust(self, secret: str, path: str | None = None) -> None:
        """Verify with ``secret`` (only requests to ``path``, when given)."""
        params = {"path": path} if path else {}
        httpx.post(
            f"{self.url}/__secret", content=secret.encode(), params=params, timeout=5
        ).raise_for_status()

    def _get(self, path: str, prefix: str) -> Any:
        # A client per call: these run on worker threads (asyncio.to_thread). No TLS, so
        # no trust store to load; plain http keeps each call cheap for the generator.
        with httpx.Client(timeout=60, trust_env=False, verify=False) as client:
            return client.get(f"{self.url}{path}", params={"prefix": prefix}).json()

    def deliveries(self, prefix: str = "") -> tuple[list[Delivery], int]:
        """Verified deliveries whose ledger key starts with ``prefix``, and the unverified count."""
        data = self._get("/__records", prefix)
        return [Delivery(*row) for row in data["records"]], int(data["unverified"])

    def count(self, prefix: str = "") -> int:
        """How many verified deliveries have a ledger key starting with ``prefix``."""
        return int(self._get("/__count", prefix)["count"])

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
