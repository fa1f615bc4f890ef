"""CPU time per delivered event, per process: the figure every performance change is judged by.

Read from ``/proc/<pid>/stat`` (user + system time) at the start and the end
of a phase; it is stable on a noisy machine where latency is not, because it
counts only what each process itself did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("goals", "sessions", "notifications")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """The processes to account for, by role (goals, broker, generator, receiver, ...)."""

    pids: dict[str, int]

    def snapshot(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def per_event_ms(
        self, before: dict[str, float], after: dict[str, float], events: int
    ) -> dict[str, float]:
        """Milliseconds of CPU per event for each process, plus ``services`` (the three summed)."""
        used = {name: 1000 * (after[name] - before[name]) / max(events, 1) for name in before}
        used["services"] = sum(used.get(name, 0.0) for name in SERVICES)
        return {name: round(value, 3) for name, value in used.items()}
