"""Results files: one JSON per scenario, merged into latest.json and a markdown table.

A scenario writes its full figures (ledgers, latency summaries, probes) and a
short list of headline figures, each with its target and whether it was met;
``merge`` collects them into ``latest.json`` and the table in ``latest.md``.
A scenario whose ledger did not balance is marked void: its figures are kept
for diagnosis but no target counts as met.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, TypedDict

from bench.lib.phase import load_average

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


class Headline(TypedDict):
    name: str
    value: float | str
    unit: str
    target: str
    met: bool | None


def headline(
    name: str, value: float | str, unit: str, target: str = "", met: bool | None = None
) -> Headline:
    return {"name": name, "value": value, "unit": unit, "target": target, "met": met}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_mb": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(
    scenario: str,
    figures: dict[str, Any],
    *,
    headlines: list[Headline],
    database: str,
    void: bool = False,
    notes: str = "",
    started_at: float | None = None,
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if void:
        headlines = [{**h, "met": False if h["met"] is not None else None} for h in headlines]
    record = {
        "scenario": scenario,
        "database": database,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started_at, 1) if started_at else None,
        "load_average_at_end": load_average(),
        "machine": machine(),
        "void": void,
        "headlines": headlines,
        "figures": figures,
        "notes": notes,
    }
    path = RESULTS_DIR / database / f"{scenario}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    for item in headlines:
        mark = {True: "met", False: "NOT met", None: ""}[item["met"]]
        print(
            f"[{scenario}] {item['name']}: {item['value']} {item['unit']}"
            f"  (target {item['target'] or '-'}) {mark}",
            flush=True,
        )
    return path


def load(scenario: str, database: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / database / f"{scenario}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def merge(
    scenarios: list[str], *, database: str, extra: list[Headline] | None = None
) -> tuple[Path, Path]:
    """Collect scenario files into latest.json and latest.md (with cross-scenario ``extra``).

    A PostgreSQL run writes latest-postgresql.json and .md instead.
    """
    records = [record for name in scenarios if (record := load(name, database)) is not None]
    stem = "latest" if database == "sqlite" else f"latest-{database}"
    latest = RESULTS_DIR / f"{stem}.json"
    summary: dict[str, Any] = {
        "machine": machine(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "derived": extra or [],
        "scenarios": records,
    }
    latest.write_text(json.dumps(summary, indent=2, sort_keys=True))
    info = summary["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_mb']} MiB, "
        f"Python {info['python']}, {info['platform']}. Finished {summary['finished_at']}.",
        "Everything (broker, services, load generator, receiver) on this one machine.",
        "",
        "| scenario | database | figure | value | target | met | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for record in records:
        name = record["scenario"] + (" (VOID: ledger unbalanced)" if record.get("void") else "")
        for item in record["headlines"]:
            lines.append(_row(name, record["database"], item, record.get("load_average_at_end")))
    for item in extra or []:
        lines.append(_row("derived", "", item, None))
    table = RESULTS_DIR / f"{stem}.md"
    table.write_text("\n".join(lines) + "\n")
    return latest, table


def _row(scenario: str, database: str, item: Headline, load: float | None) -> str:
    met = {True: "yes", False: "**no**", None: ""}[item["met"]]
    value = f"{item['value']} {item['unit']}".strip()
    return (
        f"| {scenario} | {database} | {item['name']} | {value} | {item['target']} | {met} "
        f"| {'' if load is None else load} |"
    )
