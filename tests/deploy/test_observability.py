"""Alert rules and the Grafana dashboard read metrics that exist, with labels that exist.

The metric objects are read from shared/metrics.py itself, so a renamed or
removed metric (or label) fails here instead of silently never alerting.
With promtool installed, the rules are also checked by Prometheus's own
parser and unit-tested (tests/deploy/data/alerts.test.yaml).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import (
    DEPLOY,
    OPERATIONS_DOC,
    REPO,
    defined_metrics,
    grouping_labels,
    load_yaml_documents,
    markdown_anchors,
    metrics_used,
    promql_problems,
)

ALERTS_FILE = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = Path(__file__).parent / "data" / "alerts.test.yaml"
DASHBOARD_FILE = DEPLOY / "grafana" / "followthrough.json"

# What the operations issue asks the alerts to watch, by the metric that shows it.
WATCHED = {
    "dead letters growing": "followthrough_dead_lettered",
    "consumer lag": "followthrough_consumer_lag",
    "failed deliveries": "followthrough_deliveries",
    "scheduler lag": "followthrough_scheduler_lag_seconds",
    "outbox age": "followthrough_outbox_oldest_age_seconds",
}


def alert_rules() -> list[dict[str, Any]]:
    (document,) = load_yaml_documents(ALERTS_FILE)
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_the_metric_reader_finds_the_metrics_module() -> None:
    found = defined_metrics()
    assert "followthrough_http_requests" in found
    assert found["followthrough_http_requests"].kind == "counter"
    assert "route" in found["followthrough_http_requests"].labels
    assert list(promql_problems("rate(followthrough_no_such_metric_total[5m])")) != []
    assert list(promql_problems('followthrough_consumer_lag{colour="red"}')) != []
    assert list(promql_problems("sum by (colour) (followthrough_consumer_lag)")) != []


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_reads_existing_metrics_and_labels(rule: dict[str, Any]) -> None:
    assert list(promql_problems(rule["expr"])) == []
    result_labels = grouping_labels(rule["expr"])
    for text in rule["annotations"].values():
        for label in re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text):
            assert label in result_labels, f"{rule['alert']} renders {label}, which it drops"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_has_severity_summary_and_a_runbook_in_the_operations_guide(
    rule: dict[str, Any],
) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]
    document, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert (REPO / document).resolve() == OPERATIONS_DOC.resolve()
    assert anchor in markdown_anchors(OPERATIONS_DOC), f"no heading for #{anchor}"


def test_alerts_watch_everything_the_operations_issue_names() -> None:
    used = set().union(*(metrics_used(rule["expr"]) for rule in alert_rules()))
    missing = {what for what, metric in WATCHED.items() if metric not in used}
    assert missing == set()


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return path


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS_FILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_their_unit_test_series(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", ALERTS_TEST.name],
        cwd=ALERTS_TEST.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname:\s*(\w+)", ALERTS_TEST.read_text()))
    assert tested == {rule["alert"] for rule in alert_rules()}


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    assert dashboard["uid"]
    assert dashboard["title"]
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {item["name"] for item in dashboard["templating"]["list"]}
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for reference in re.findall(r"\$\{?(\w+)", json.dumps(panel)):
            assert reference in variables or reference.startswith("__"), reference


@pytest.mark.parametrize(
    "panel",
    [panel for panel in dashboard_panels() if panel["type"] != "row"],
    ids=lambda panel: panel["title"],
)
def test_dashboard_panel_reads_existing_metrics_and_labels(panel: dict[str, Any]) -> None:
    for target in panel["targets"]:
        expression = target["expr"].replace("$__rate_interval", "5m")
        assert list(promql_problems(expression)) == []


def test_dashboard_shows_every_metric() -> None:
    shown = set().union(
        *(
            metrics_used(target["expr"])
            for panel in dashboard_panels()
            for target in panel.get("targets", [])
        )
    )
    assert set(defined_metrics()) - shown == set()
