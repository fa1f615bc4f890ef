"""What the deploy tests read: the deploy files, the settings classes and the metrics module.

Everything a test compares against is derived from the code (settings fields,
metric objects, event topics), never from a list kept here, so the deploy
files cannot drift from the services without a test noticing.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from pydantic import SecretStr, ValidationError

from services.goals.settings import GoalsSettings
from services.notifications.settings import NotificationsSettings
from services.sessions.settings import SessionsSettings
from shared import metrics
from shared.settings import COMMON_PREFIX, ServiceSettings, describe_settings_error

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
OPERATIONS_DOC = REPO / "docs" / "operations.md"

SERVICE_SETTINGS: dict[str, type[ServiceSettings]] = {
    "goals": GoalsSettings,
    "sessions": SessionsSettings,
    "notifications": NotificationsSettings,
}


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML file, parsed safely."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


# --- settings ---------------------------------------------------------------------------


def accepted_env_names(cls: type[ServiceSettings]) -> set[str]:
    """Environment variables the settings class reads: its prefix or the common one, per field."""
    names: set[str] = set()
    for field_name, info in cls.model_fields.items():
        for prefix in (cls.env_prefix(), COMMON_PREFIX):
            names.add(f"{prefix}{field_name}".upper())
        if isinstance(info.validation_alias, str):
            names.add(info.validation_alias.upper())
    return names


def field_for_env_name(cls: type[ServiceSettings], name: str) -> str | None:
    """The settings field an environment variable sets, or None."""
    upper = name.upper()
    for prefix in (cls.env_prefix(), COMMON_PREFIX):
        if upper.startswith(prefix):
            field = upper[len(prefix) :].lower()
            if field in cls.model_fields:
                return field
    return None


def is_secret_field(cls: type[ServiceSettings], field: str) -> bool:
    """Fields holding secrets: SecretStr ones, and the database URL (it carries a password)."""
    if field == "database_url":
        return True
    annotation = cls.model_fields[field].annotation
    return annotation is SecretStr or "SecretStr" in repr(annotation)


def production_required_secrets(cls: type[ServiceSettings]) -> set[str]:
    """SecretStr fields with a built-in default, which production refuses (see settings.py)."""
    return {
        name
        for name, info in cls.model_fields.items()
        if info.annotation is SecretStr and info.default is not None
    }


def build_settings(
    cls: type[ServiceSettings],
    environment: Mapping[str, str],
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
) -> ServiceSettings:
    """Build the settings class from ``environment`` alone, as the process would at start.

    Only the variables settings read (the service's prefix and the common one)
    are set; the rest of a container's environment (PATH, ...) is left alone.
    """
    prefixes = (cls.env_prefix(), COMMON_PREFIX)
    for key in list(os.environ):
        if key.upper().startswith(prefixes):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        if key.upper().startswith(prefixes):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(workdir)  # no stray .env file
    try:
        return cls()
    except ValidationError as error:
        pytest.fail(describe_settings_error(cls, error))


# --- the Dockerfile ---------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each build stage, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def image_environment() -> dict[str, str]:
    """ENV of the runtime (last) stage: what every container starts with."""
    environment: dict[str, str] = {}
    for instruction in stages(dockerfile_instructions())[-1]:
        if instruction.keyword != "ENV":
            continue
        for token in shlex.split(instruction.arguments):
            key, _, value = token.partition("=")
            environment[key] = value
    return environment


# --- metrics and PromQL -----------------------------------------------------------------


@dataclass(frozen=True)
class MetricInfo:
    family: str
    kind: str
    labels: frozenset[str]


def defined_metrics() -> dict[str, MetricInfo]:
    """Each metric object in shared/metrics.py, by family name."""
    found: dict[str, MetricInfo] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = frozenset(value._labelnames)  # the declared label names
        for family in value.describe():
            found[family.name] = MetricInfo(family.name, family.type, labels)
    return found


_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def exposed_series() -> dict[str, tuple[MetricInfo, frozenset[str]]]:
    """Every series name the metrics expose, with its metric and the labels it carries."""
    series: dict[str, tuple[MetricInfo, frozenset[str]]] = {}
    for info in defined_metrics().values():
        for suffix in _SAMPLE_SUFFIXES[info.kind]:
            labels = info.labels | {"le"} if suffix == "_bucket" else info.labels
            series[info.family + suffix] = (info, labels)
    return series


METRIC_NAME = re.compile(r"\bfollowthrough_[a-z0-9_]+\b")
_SELECTOR = re.compile(r"\b(followthrough_[a-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def promql_problems(expr: str) -> Iterator[str]:
    """Metric or label names in a PromQL expression that shared/metrics.py does not define."""
    known = exposed_series()
    used = METRIC_NAME.findall(expr)
    if not used:
        yield f"no followthrough metric in {expr!r}"
    for name in used:
        if name not in known:
            yield f"unknown metric {name}"
    for name, matchers in _SELECTOR.findall(expr):
        if name not in known:
            continue
        for label in _MATCHER.findall(matchers):
            if label not in known[name][1]:
                yield f"{name} has no label {label!r}"
    available = set().union(*(known[name][1] for name in used if name in known))
    for group in _GROUPING.findall(expr):
        for label in (part.strip() for part in group.split(",")):
            if label and label not in available:
                yield f"label {label!r} is on none of the metrics of {expr!r}"


def metrics_used(expr: str) -> set[str]:
    """The metric families an expression reads."""
    known = exposed_series()
    return {known[name][0].family for name in METRIC_NAME.findall(expr) if name in known}


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for group in _GROUPING.findall(expr):
        labels |= {part.strip() for part in group.split(",") if part.strip()}
    return labels


def markdown_anchors(path: Path) -> set[str]:
    """GitHub-style anchors of a Markdown file's headings."""
    anchors: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^#{1,6}\s+(.*)$", line)
        if not match:
            continue
        text = match.group(1).strip().lower()
        text = re.sub(r"[^\w\- ]", "", text)
        anchors.add(text.replace(" ", "-"))
    return anchors
