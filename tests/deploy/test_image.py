"""deploy/Dockerfile and what goes into the image.

Docker cannot build here, so the checks are: the Dockerfile's structure
(multi-stage, unprivileged user, health check on /healthz, one image whose
command picks the service), a build context that leaves local state out, and
the wheel the build stage makes, built here the same way, carrying every file
the services need at run time (migrations, the Alembic environment, templates).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.deploy.support import (
    REPO,
    SERVICE_SETTINGS,
    dockerfile_instructions,
    image_environment,
    stages,
)

PACKAGES = ("shared", "services")


def test_the_dockerfile_builds_in_stages_and_runs_unprivileged() -> None:
    build_stages = stages(dockerfile_instructions())
    assert len(build_stages) >= 2, "a build stage and a slim runtime stage"
    runtime = build_stages[-1]
    keywords = [instruction.keyword for instruction in runtime]
    assert "slim" in runtime[0].arguments
    assert any(
        item.keyword == "COPY" and item.arguments.startswith("--from=") for item in runtime
    ), "the runtime stage copies what the build stage made"
    users = [item.arguments for item in runtime if item.keyword == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert keywords.index("USER") > max(
        index for index, keyword in enumerate(keywords) if keyword == "RUN"
    ), "everything after USER runs unprivileged"


def test_the_health_check_asks_the_service_port_for_healthz() -> None:
    runtime = stages(dockerfile_instructions())[-1]
    (healthcheck,) = [item.arguments for item in runtime if item.keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    port = image_environment()["FOLLOWTHROUGH_PORT"]
    assert "FOLLOWTHROUGH_PORT" in healthcheck
    exposed = [item.arguments for item in runtime if item.keyword == "EXPOSE"]
    assert exposed == [port]


def test_one_image_runs_any_service_by_its_command() -> None:
    runtime = stages(dockerfile_instructions())[-1]
    (entrypoint,) = [item.arguments for item in runtime if item.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["python", "-m"]
    (command,) = [item.arguments for item in runtime if item.keyword == "CMD"]
    (default,) = json.loads(command)
    assert default in {f"services.{name}" for name in SERVICE_SETTINGS}
    for name in SERVICE_SETTINGS:
        assert importlib.util.find_spec(f"services.{name}.__main__") is not None


def test_the_build_context_leaves_local_state_and_secrets_out() -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".data", ".env", "tests"} <= ignored
    copied = {
        source
        for item in dockerfile_instructions()
        if item.keyword == "COPY" and not item.arguments.startswith("--from=")
        for source in item.arguments.split()[:-1]
    }
    for needed in {"pyproject.toml", "README.md", *PACKAGES}:
        assert needed in copied
        assert needed not in ignored


def test_the_wheel_carries_every_file_the_services_need(tmp_path: Path) -> None:
    """Build the wheel as the build stage does and compare it with the source tree."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=ignore)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("followthrough-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    expected = {
        path.relative_to(source).as_posix()
        for package in PACKAGES
        for path in (source / package).rglob("*")
        if path.is_file()
    }
    assert sorted(expected - packed) == []
    assert any(name.endswith("migration_scripts/env.py") for name in packed)
    for name in SERVICE_SETTINGS:
        assert any(item.startswith(f"services/{name}/migrations/versions/") for item in packed)
