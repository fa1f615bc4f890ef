"""What commands print: aligned text tables for people, JSON (``--json``) for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import typer


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain table with a header row; long cells are cut so a row stays on one line."""
    cells = [[_text(row.get(column))[:80] for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[index]) for line in cells)])
        for index, column in enumerate(columns)
    ]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def emit(
    data: Any,
    *,
    as_json: bool,
    rows: Sequence[Mapping[str, Any]] = (),
    columns: Sequence[str] = (),
    empty: str = "nothing to show",
    title: str | None = None,
) -> None:
    """Print ``data`` as JSON, or ``rows`` as a table (``empty`` when there are none)."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    if title:
        typer.echo(title)
    typer.echo(table(rows, columns) if rows else empty)
