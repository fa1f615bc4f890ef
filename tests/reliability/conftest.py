"""Reliability fixtures: a process stack per test, and the results table every test adds to.

Each test records what it injected and what came out (events, lost,
duplicated, recovery time) with ``record_result``; at the end of the run
the rows are written to ``.data/reliability/latest.json`` and ``latest.md``,
from which docs/reliability.md's table is copied.
"""

from __future__ import annotations

import json
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


@pytest.fixture(scope="session", autouse=True)
def results_file(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not _RESULTS:
        return
    folder = Path(request.config.rootpath) / ".data" / "reliability"
    folder.mkdir(parents=True, exist_ok=True)
    run = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "rows": _RESULTS}
    (folder / "latest.json").write_text(json.dumps(run, indent=2) + "\n")
    lines = [
        "| fault injected | events | delivered | lost | duplicated | recovery (s) | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in _RESULTS:
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
