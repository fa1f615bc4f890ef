"""Reliability fixtures: a process stack per test, and the results table every test adds to.

Each test records what it injected and what came out (events, lost,
duplicated, recovery time) with ``record_result``; at the end of the run
the rows (of every xdist worker) are written to ``.data/reliability/latest.json``
and ``latest.md``, from which docs/reliability.md's table is copied.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.devstack.broker import TansuBroker
from tests.reliability.harness import Stack, stack_environment

_RESULTS: list[dict[str, Any]] = []

RecordResult = Callable[..., None]


@pytest.fixture
def record_result(request: pytest.FixtureRequest) -> RecordResult:
    def record(
        fault: str,
        *,
        events: int,
        delivered: int,
        lost: int,
        duplicates: int,
        recovery_s: float | None,
        notes: str = "",
    ) -> None:
        _RESULTS.append(
            {
                "fault": fault,
                "test": request.node.nodeid,
                "events": events,
                "delivered": delivered,
                "lost": lost,
                "duplicates": duplicates,
                "recovery_s": None if recovery_s is None else round(recovery_s, 1),
                "notes": notes,
            }
        )

    return record


_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
"""One id for every xdist worker of a run (each writes its part of the table)."""


@pytest.fixture(scope="session", autouse=True)
def results_file(request: pytest.FixtureRequest) -> Iterator[None]:
    """Write this process's rows, then the table of every part of this run so far.

    Under xdist each worker finishes on its own; the last one writes the whole table.
    """
    yield
    if not _RESULTS:
        return
    folder = Path(request.config.rootpath) / ".data" / "reliability"
    folder.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    for stale in folder.glob("part-*.json"):
        if not stale.name.startswith(f"part-{_RUN}-"):
            stale.unlink(missing_ok=True)
    (folder / f"part-{_RUN}-{worker}.json").write_text(json.dumps(_RESULTS))
    rows = [
        row for part in folder.glob(f"part-{_RUN}-*.json") for row in json.loads(part.read_text())
    ]
    rows.sort(key=lambda row: row["test"])
    run = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "rows": rows}
    (folder / "latest.json").write_text(json.dumps(run, indent=2) + "\n")
    lines = [
        "| fault injected | events | delivered | lost | duplicated | recovery (s) | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        recovery = "" if row["recovery_s"] is None else f"{row['recovery_s']:g}"
        lines.append(
            f"| {row['fault']} | {row['events']} | {row['delivered']} | {row['lost']} "
            f"| {row['duplicates']} | {recovery} | {row['notes']} |"
        )
    (folder / "latest.md").write_text("\n".join(lines) + "\n")


@pytest.fixture
async def stack(
    broker: TansuBroker, topic_prefix: str, keys_file: Path, tmp_path: Path
) -> AsyncIterator[Stack]:
    """The three services' environment on the session broker; the test starts what it needs."""
    env = stack_environment(broker.bootstrap_servers, topic_prefix, keys_file, tmp_path / "data")
    running = Stack(env=env, logs=tmp_path)
    try:
        yield running
    finally:
        await running.stop_all()
