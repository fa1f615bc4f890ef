"""Logging: one JSON object per line with the bound context, for our records and the libraries'."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from services.goals.settings import GoalsSettings
from shared.context import bound
from shared.http.server import configure_for
from shared.logs import configure_logging, get_logger

CONTEXT = {
    "request_id": "req-1",
    "correlation_id": "corr-1",
    "tenant_id": "acme",
    "event_id": "evt-1",
}


@pytest.fixture
def capture() -> Iterator[Callable[..., io.StringIO]]:
    """Configure logging into a buffer; put the process's logging back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("aiokafka", "uvicorn.error")}

    def configure(service: str = "goals", fmt: Any = "json", level: str = "INFO") -> io.StringIO:
        stream = io.StringIO()
        configure_logging(service, level=level, fmt=fmt, stream=stream)
        return stream

    try:
        yield configure
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_our_lines_are_json_with_timestamp_level_service_event_and_context(
    capture: Callable[..., io.StringIO],
) -> None:
    stream = capture("goals")
    log = get_logger("services.goals.test")

    with bound(**CONTEXT):
        log.info("goal.created", goal_id="g-1")
    log.warning("goal.outside")

    inside, outside = lines(stream)
    assert inside["event"] == "goal.created"
    assert inside["level"] == "info"
    assert inside["service"] == "goals"
    assert inside["logger"] == "services.goals.test"
    assert inside["goal_id"] == "g-1"
    assert {key: inside[key] for key in CONTEXT} == CONTEXT
    stamp = datetime.fromisoformat(inside["timestamp"])
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset() == datetime.now(UTC).utcoffset()
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert outside["level"] == "warning"
    assert not set(CONTEXT) & set(outside)  # unbound after the block


def test_uvicorn_and_aiokafka_records_share_the_renderer_and_the_context(
    capture: Callable[..., io.StringIO],
) -> None:
    stream = capture("sessions")
    with bound(**CONTEXT):
        logging.getLogger("uvicorn.error").info("Application startup complete.")
        logging.getLogger("aiokafka.consumer.group_coordinator").warning(
            "Heartbeat failed for group %s", "sessions"
        )
        logging.getLogger("aiokafka").info("too chatty to show at INFO")

    uvicorn_line, kafka_line = lines(stream)
    assert uvicorn_line["event"] == "Application startup complete."
    assert uvicorn_line["logger"] == "uvicorn.error"
    assert uvicorn_line["level"] == "info"
    assert kafka_line["event"] == "Heartbeat failed for group sessions"
    assert kafka_line["level"] == "warning"
    for line in (uvicorn_line, kafka_line):
        assert line["service"] == "sessions"
        assert {key: line[key] for key in CONTEXT} == CONTEXT
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_exceptions_are_one_json_line_with_the_traceback(
    capture: Callable[..., io.StringIO],
) -> None:
    stream = capture()
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("t").exception("thing.failed")
    (line,) = lines(stream)
    assert line["event"] == "thing.failed"
    assert line["level"] == "error"
    assert "Traceback" in line["exception"]
    assert "ValueError: boom" in line["exception"]


def test_a_later_configuration_changes_the_service_even_for_cached_loggers(
    capture: Callable[..., io.StringIO],
) -> None:
    log = get_logger("cached")
    capture("goals")
    log.info("first")
    stream = capture("notifications")
    log.info("second")
    (line,) = lines(stream)
    assert line["service"] == "notifications"


def test_console_format_is_readable_not_json(capture: Callable[..., io.StringIO]) -> None:
    stream = capture("goals", fmt="console")
    with bound(request_id="req-9"):
        get_logger("t").info("goal.created", goal_id="g-1")
        logging.getLogger("uvicorn.error").info("Uvicorn running")
    text = stream.getvalue()
    first, second = text.splitlines()
    assert not first.startswith("{")
    assert "goal.created" in first
    assert "goal_id=g-1" in first
    assert "request_id=req-9" in first
    assert "Uvicorn running" in second


def test_auto_format_is_json_when_not_a_terminal(capture: Callable[..., io.StringIO]) -> None:
    stream = capture("goals", fmt="auto")
    get_logger("t").info("x")
    assert lines(stream)[0]["event"] == "x"


def test_log_format_setting_selects_the_renderer(
    capture: Callable[..., io.StringIO], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    capture()  # saves and later restores the process's logging
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOALS_LOG_FORMAT", "console")
    monkeypatch.setenv("GOALS_LOG_LEVEL", "WARNING")
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    configure_for(GoalsSettings())
    get_logger("t").info("hidden")
    get_logger("t").warning("shown", n=1)
    (line,) = stream.getvalue().splitlines()
    assert "shown" in line
    assert "n=1" in line
    assert not line.startswith("{")
