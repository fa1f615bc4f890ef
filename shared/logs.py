"""Structured logging: one JSON object per line, the same renderer for every library.

Our own events go through structlog alone, rendered once and written by the
root handler's stream under its lock: no standard-library record, no caller
lookup (``findCaller`` walked the stack for every line, about a tenth of a
scheduler pass), and a line below the level stops at the first processor.
The standard library's records (uvicorn, aiokafka, SQLAlchemy, alembic) are
routed through the same processors via ``ProcessorFormatter``, so an operator
reads one format with one set of fields.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from typing import Any, Literal

import orjson
import structlog
from structlog.types import EventDict, FilteringBoundLogger, Processor, WrappedLogger

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


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Uvicorn duplicates its message with ANSI colours in ``color_message``; drop it."""
    event_dict.pop("color_message", None)
    return event_dict


class _Output:
    """What the latest ``configure_logging`` chose, read per line.

    structlog caches each logger's processor chain on first use, so the chain
    only refers to this; a later configuration (tests, tools) still changes the
    service, the level, the renderer and the stream of loggers made before it.
    """

    service = "unknown"
    level = logging.INFO
    renderer: Processor  # set below, to _json_lines()
    handler: logging.StreamHandler[Any] = logging.StreamHandler(sys.stdout)


def _json_lines() -> Processor:
    """One JSON object, the traceback (if any) a string in it."""
    exception = structlog.processors.format_exc_info
    dump = structlog.processors.JSONRenderer(serializer=_orjson_dumps)

    def render(logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
        return dump(logger, method, exception(logger, method, event_dict))

    return render


_Output.renderer = _json_lines()


def _at_level(_: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    if structlog.processors.NAME_TO_LEVEL.get(method, logging.INFO) < _Output.level:
        raise structlog.DropEvent
    return event_dict


def _add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", _Output.service)
    return event_dict


def _render(logger: WrappedLogger, method: str, event_dict: EventDict) -> Any:
    return _Output.renderer(logger, method, event_dict)


class _Lines:
    """structlog's output: each rendered line goes to the root handler's stream, under its
    lock, so it never interleaves with a library's record written from another thread.
    One per logger name (``add_logger_name`` reads it), as the standard library has."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, line: str) -> None:
        handler = _Output.handler
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(line + "\n")
            handler.stream.flush()

    debug = info = warning = warn = error = exception = critical = fatal = msg


@functools.cache
def _lines(name: str | None = None, *_: Any) -> _Lines:
    return _Lines(name or "root")


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

    # Nothing service-specific in these chains: structlog caches them in each logger on
    # first use; what may change later is read from _Output per line.
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
    traced: list[Processor] = []
    if tracing.enabled:  # trace_id and span_id beside the correlation id, inside a span
        from shared.tracing.logs import add_trace_ids

        traced.append(add_trace_ids)
    foreign: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        stamp,
        _drop_color_message,
        *traced,
    ]
    # Colours only for a terminal; the console renderer formats exceptions itself.
    renderer = structlog.dev.ConsoleRenderer(colors=_is_tty(out)) if use_console else _json_lines()

    structlog.configure(
        processors=[
            _at_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            stamp,
            *traced,
            structlog.processors.StackInfoRenderer(),
            _add_service,
            _render,
        ],
        logger_factory=_lines,
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service,
            _render,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    _Output.service = service
    _Output.renderer = renderer
    _Output.level = logging.getLevelName(level.upper())
    _Output.handler = handler
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


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A logger whose lines name it (``logger``), like the standard library's records."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
