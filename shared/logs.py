"""Structured logging: one JSON object per line, the same renderer for every library.

structlog renders our own events; the standard library's records (uvicorn,
aiokafka, SQLAlchemy, alembic) are routed through the same processor chain via
``ProcessorFormatter`` so an operator reads one format with one set of fields.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import orjson
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from shared import tracing

LogFormat = Literal["json", "console", "auto"]

_NOISY_LIBRARIES = {
    "aiokafka": logging.WARNING,
    "aiokafka.conn": logging.ERROR,
    "aiokafka.consumer.group_coordinator": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "aiosqlite": logging.WARNING,  # a line per cursor call at DEBUG
    "alembic": logging.WARNING,
    "uvicorn.access": logging.WARNING,
    "mail.log": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default).decode()


def _service_adder(service: str) -> Processor:
    def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Uvicorn duplicates its message with ANSI colours in ``color_message``; drop it."""
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(
    service: str,
    *,
    level: str = "INFO",
    fmt: LogFormat = "auto",
    stream: Any = None,
) -> None:
    """Configure structlog and the standard library for one process.

    Called once by each entry point (never at import), so tests and tools can
    choose their own format and level.
    """
    out = stream if stream is not None else sys.stdout
    use_console = fmt == "console" or (fmt == "auto" and _is_tty(out))

    # Nothing service-specific in this chain: structlog caches it in each logger
    # on first use, so a later configure_logging (tests, tools) could not change it.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _drop_color_message,
    ]
    if tracing.enabled:  # trace_id and span_id beside the correlation id, inside a span
        from shared.tracing.logs import add_trace_ids

        shared.append(add_trace_ids)
    rendering: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        _service_adder(service),
    ]
    if use_console:
        # Colours only for a terminal; the renderer formats exceptions itself.
        rendering.append(structlog.dev.ConsoleRenderer(colors=_is_tty(out)))
    else:
        rendering += [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_orjson_dumps),
        ]

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=rendering)
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    threshold = logging.getLevelName(level.upper())
    for name, lib_level in _NOISY_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(lib_level, threshold))


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
