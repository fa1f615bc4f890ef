"""Results files: one JSON per scenario, merged into latest.json and a markdown table."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(
    scenario: str, figures: dict[str, Any], *, targets: dict[str, str], notes: str = ""
) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = {
        "scenario": scenario,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "figures": figures,
        "targets": targets,
        "notes": notes,
    }
    path = RESULTS_DIR / f"{scenario}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    print(json.dumps({"scenario": scenario, **figures}, indent=2))
    return path


def merge(scenarios: list[str]) -> tuple[Path, Path]:
    """Collect scenario files into latest.json and latest.md."""
    records = []
    for name in scenarios:
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            records.append(json.loads(path.read_text()))
    latest = RESULTS_DIR / "latest.json"
    latest.write_text(json.dumps({"machine": machine(), "scenarios": records}, indent=2))
    lines = ["| scenario | figure | value | target |", "|---|---|---|---|"]
    for record in records:
        targets = record.get("targets", {})
        for key, value in record["figures"].items():
            if isinstance(value, dict):
                value = json.dumps(value, sort_keys=True)
            lines.append(f"| {record['scenario']} | {key} | {value} | {targets.get(key, '')} |")
    table = RESULTS_DIR / "latest.md"
    table.write_text("\n".join(lines) + "\n")
    return latest, table
