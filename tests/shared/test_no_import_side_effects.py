"""Importing any module does no I/O and reads no settings: apps are built by composition roots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IMPORT_EVERYTHING = """
import importlib, pkgutil, shared, services
names = []
for package in (shared, services):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if module.name.endswith("__main__") or ".migrations." in module.name:
            continue
        if module.name.startswith("shared.db.migration_scripts"):
            continue
        importlib.import_module(module.name)
        names.append(module.name)
print(len(names))
"""


def test_importing_every_module_touches_no_file_and_reads_no_setting(tmp_path: Path) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("GOALS_", "SESSIONS_", "NOTIFICATIONS_", "FOLLOWTHROUGH_"))
    }
    # Settings read at import would fail on these; files written at import would land here.
    env.update(
        GOALS_PORT="not-a-port",
        FOLLOWTHROUGH_LOG_LEVEL="NOT-A-LEVEL",
        FOLLOWTHROUGH_DATA_DIR=str(tmp_path / "data"),
        HOME=str(tmp_path / "home"),
    )
    finished = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert int(finished.stdout) > 50
    assert finished.stderr == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == []
