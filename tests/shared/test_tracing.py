"""Tracing is off without an OTLP endpoint, and then loads no SDK, exporter or instrumentation.

The services are built in a fresh interpreter the way their entry points
build them (``configure_for`` then ``create_app``), an event is made and its
outbox row written into memory, and the interpreter's modules are looked at.
(FastAPI itself imports the OpenTelemetry API, and only the API, for its
native telemetry, which stays inactive without a configured provider.) The
whole trace, on, is in tests/e2e/test_tracing.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import tracing

BUILD_EVERY_SERVICE = """
import json, sys
from shared import tracing
from shared.http.server import configure_for
from shared.settings import load_settings
from services.goals.app import create_app as goals_app
from services.goals.settings import GoalsSettings
from services.sessions.app import create_app as sessions_app
from services.sessions.settings import SessionsSettings
from services.notifications.app import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from shared.events import build_event
from shared.events.catalog.notifications import WebhookTest, WebhookTestData
from shared.outbox.writer import Outbox

for cls, create in (
    (GoalsSettings, goals_app),
    (SessionsSettings, sessions_app),
    (NotificationsSettings, notifications_app),
):
    settings = load_settings(cls)
    configure_for(settings)
    create(settings)
event = build_event(
    WebhookTest, WebhookTestData(endpoint_id="e-1"), tenant_id="acme", partition_key="e-1",
    source="/followthrough/notifications",
)
row = Outbox()._row(event, event.to_json())
print(json.dumps({
    "enabled": tracing.enabled,
    "modules": sorted(
        name for name in sys.modules
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter",
                            "opentelemetry.instrumentation", "shared.tracing."))
    ),
    "row": sorted(row),
    "event": json.loads(event.to_json()),
}))
"""


def build_services(tmp_path: Path, keys_file: Path, **otel: str) -> dict[str, object]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("OTEL_", "GOALS_", "SESSIONS_", "NOTIFICATIONS_"))
    }
    env.update(
        FOLLOWTHROUGH_DATA_DIR=str(tmp_path / "data"),
        FOLLOWTHROUGH_AUTH_KEYS_FILE=str(keys_file),
        FOLLOWTHROUGH_ENVIRONMENT="test",
        FOLLOWTHROUGH_LOG_FORMAT="json",
        **otel,
    )
    finished = subprocess.run(
        [sys.executable, "-c", BUILD_EVERY_SERVICE],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    result: dict[str, object] = json.loads(finished.stdout.splitlines()[-1])
    return result


def test_without_an_endpoint_no_sdk_is_loaded(tmp_path: Path, keys_file: Path) -> None:
    built = build_services(tmp_path, keys_file, OTEL_SERVICE_NAME="ignored-without-endpoint")
    assert built["enabled"] is False
    assert built["modules"] == []
    assert "traceparent" not in built["row"]  # type: ignore[operator]
    assert "traceparent" not in built["event"]  # type: ignore[operator]


def test_an_endpoint_turns_it_on_with_the_sdk_and_the_instrumentations(
    tmp_path: Path, keys_file: Path
) -> None:
    # Nothing is exported here (no span is started), so the address need not answer.
    built = build_services(tmp_path, keys_file, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert built["enabled"] is True
    modules = set(built["modules"])  # type: ignore[call-overload]
    assert {
        "opentelemetry.sdk.trace",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.instrumentation.fastapi",
        "opentelemetry.instrumentation.httpx",
        "opentelemetry.instrumentation.sqlalchemy",
    } <= modules
    # Outside any span an event has no trace context, and its row says so.
    assert {"traceparent", "tracestate"} <= set(built["row"])  # type: ignore[call-overload]
    assert "traceparent" not in built["event"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "goals"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_the_standard_variables_decide(environ: dict[str, str], wanted: bool) -> None:
    assert tracing.wanted(environ) is wanted


def test_a_malformed_traceparent_is_no_parent_and_no_link() -> None:
    from shared.tracing.propagation import context_of, from_headers, link_to

    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert context_of(good) is not None
    link = link_to(good)
    assert link is not None
    assert format(link.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    for bad in (None, "", "00-zz-b7ad6b7169203331-01", "00-" + "0" * 32 + "-b7ad6b7169203331-01"):
        assert context_of(bad) is None
        assert link_to(bad) is None
    assert from_headers([("traceparent", good.encode()), ("content-type", b"x")]) is not None
    assert from_headers([("traceparent", b"\xff\xfe")]) is None
    assert from_headers(None) is None
