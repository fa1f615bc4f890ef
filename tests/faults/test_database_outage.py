"""The database away: 503 problem+json with Retry-After, nothing half-written, recovery alone.

* SQLite locked by another process's connection (``BEGIN EXCLUSIVE``): every
  service's writes answer 503 once the busy timeout runs out, reads still
  answer (WAL), and writes succeed again as soon as the lock is gone.
* PostgreSQL unreachable (the service talks to it through a TCP proxy the
  test cuts): reads and writes answer 503, ``/readyz`` says so, and the
  service recovers by itself when the line is back. A batch cut exactly at
  its ``COMMIT`` leaves nothing behind: none of its goals, none of its
  events, and the same batch sent again is accepted as new.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from services.goals.app import create_app
from services.goals.settings import GoalsSettings
from shared.db import database as database_module
from shared.devstack.broker import TansuBroker
from tests.services.goals.fixtures import goal_body
from tests.support import postgres
from tests.support.apps import make_settings, serving
from tests.support.faults import tcp_proxy
from tests.support.kafka import read_events
from tests.support.stack import StackFactory


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Another process's connection holding SQLite's write lock."""
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


async def test_sqlite_locked_answers_503_and_recovers(
    stack: StackFactory,
    auth_headers: Callable[..., dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(database_module, "SQLITE_BUSY_TIMEOUT_MS", 500)
    headers = auth_headers()
    writes: dict[str, tuple[str, str, Any]] = {
        "goals": ("POST", "/v1/goals", goal_body(external_ref="during-lock")),
        "sessions": ("POST", "/v1/checkins", {"goal_id": "g-unknown"}),
        "notifications": ("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/hook"}),
    }
    reads = {"goals": "/v1/goals", "sessions": "/v1/goals", "notifications": "/v1/endpoints"}
    async with stack() as running, httpx.AsyncClient(timeout=30) as http:
        for service, (method, path, body) in writes.items():
            url = running.urls[service]
            with exclusive_lock(tmp_path / "data" / f"{service}.db"):
                refused = await http.request(method, url + path, json=body, headers=headers)
                _assert_unavailable(refused)
                keyed = {**headers, "Idempotency-Key": f"k-{service}"}
                _assert_unavailable(
                    await http.request(method, url + path, json=body, headers=keyed)
                )
                read = await http.get(url + reads[service], headers=headers)
                assert read.status_code == 200, read.text  # readers never wait on a writer
            # The lock is gone: the same requests go through, the keyed one too (not stuck).
            again = await http.request(method, url + path, json=body, headers=keyed)
            assert again.status_code in (201, 404), again.text  # 404: sessions knows no goal
            assert "idempotent-replayed" not in again.headers
        listed = await http.get(f"{running.urls['goals']}/v1/goals", headers=headers)
    assert [goal["external_ref"] for goal in listed.json()["items"]] == ["during-lock"]


def _batch(prefix: str, size: int) -> list[dict[str, Any]]:
    return [
        {
            "specversion": "1.0",
            "id": f"{prefix}-{index}",
            "source": "/crm",
            "type": "ingest.goal.upserted",
            "data": {"external_ref": f"{prefix}-{index}", **goal_body(title=f"Goal {index}")},
        }
        for index in range(size)
    ]


@pytest.mark.postgres
async def test_postgres_unreachable_answers_503_writes_nothing_partial_and_recovers(
    postgres_reachable: bool,
    broker: TansuBroker,
    topic_prefix: str,
    keys_file: Path,
    tmp_path: Path,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    if not postgres_reachable:
        pytest.skip(f"PostgreSQL not reachable at {postgres.ADMIN_DSN}")
    name, dsn = postgres.create_database("outage")
    real = urlsplit(dsn)
    headers = auth_headers()
    try:
        async with tcp_proxy(real.hostname or "127.0.0.1", real.port or 5432) as proxy:
            settings = make_settings(
                GoalsSettings,
                data_dir=tmp_path,
                bootstrap=broker.bootstrap_servers,
                topic_prefix=topic_prefix,
                keys_file=keys_file,
                database_url=dsn.replace(real.netloc, f"postgres@127.0.0.1:{proxy.port}"),
            )
            async with serving(create_app(settings)) as url, httpx.AsyncClient(timeout=60) as http:
                before = await http.post(
                    f"{url}/v1/goals", json=goal_body(external_ref="before"), headers=headers
                )
                assert before.status_code == 201, before.text

                await proxy.cut()
                _assert_unavailable(
                    await http.post(
                        f"{url}/v1/goals", json=goal_body(external_ref="during"), headers=headers
                    )
                )
                _assert_unavailable(await http.get(f"{url}/v1/goals", headers=headers))
                ready = await http.get(f"{url}/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"] is False

                await proxy.restore()
                after = await http.post(
                    f"{url}/v1/goals", json=goal_body(external_ref="after"), headers=headers
                )
                assert after.status_code == 201, after.text
                missing = await http.get(f"{url}/v1/goals/by-ref/during", headers=headers)
                assert missing.status_code == 404

                # Cut exactly at the batch's COMMIT: all of it or nothing, and here nothing.
                batch = _batch("cut", 40)
                proxy.cut_at_commit(after_bytes=8000)
                _assert_unavailable(
                    await http.post(f"{url}/v1/events", json=batch, headers=headers)
                )
                assert proxy.tripped.is_set()
                await proxy.restore()
                for item in batch[:: len(batch) // 4]:
                    gone = await http.get(
                        f"{url}/v1/goals/by-ref/{item['data']['external_ref']}", headers=headers
                    )
                    assert gone.status_code == 404, gone.text
                resent = await http.post(f"{url}/v1/events", json=batch, headers=headers)
                assert resent.status_code == 200, resent.text
                assert resent.json()["accepted"] == len(batch)  # never seen before: nothing kept
                emitted = {event_id for r in resent.json()["results"] for event_id in r["emitted"]}

                # The relay lost its connection too, and publishes again by itself.
                published = await read_events(
                    broker.bootstrap_servers,
                    f"{topic_prefix}goals",
                    until=lambda events: emitted <= {e.id for e in events},
                    timeout=60,
                )
        refs = [e.data.goal.external_ref for e in published if hasattr(e.data, "goal")]
        assert "during" not in refs
        assert sorted(ref for ref in refs if ref and ref.startswith("cut-")) == sorted(
            item["data"]["external_ref"] for item in batch
        )  # each batch goal's event exactly once: the cut attempt published nothing
    finally:
        postgres.drop_database(name)
