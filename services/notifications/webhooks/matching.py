"""Which endpoints want which events: type filters and payload filters.

Type filters are exact names (``milestone.completed``), family wildcards
(``checkin.*``) or ``*``; an empty list means every type.

Payload filters are a small, documented operator set over dotted paths into
the event's ``data`` (all conditions must hold)::

    {"goal.category": "health"}                      # shorthand for $eq
    {"goal.category": {"$in": ["health", "career"]}}
    {"risk.level": {"$ne": "low"}}
    {"milestone.evidence_note": {"$exists": true}}

Operators: ``$eq``, ``$ne``, ``$in``, ``$nin``, ``$exists``. Anything else is
refused when the endpoint is saved, so a filter never fails at delivery time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FILTER_PATTERN = re.compile(r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$")
PATH_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}$")
OPERATORS = frozenset({"$eq", "$ne", "$in", "$nin", "$exists"})
MAX_CONDITIONS = 20
MAX_LIST = 100
MAX_STRING = 1000
_MISSING = object()


def valid_filter(pattern: str) -> bool:
    return bool(FILTER_PATTERN.match(pattern))


def type_matches(filters: Iterable[str], event_type: str) -> bool:
    """An empty filter list means every event type."""
    patterns = list(filters)
    if not patterns:
        return True
    family = event_type.split(".", 1)[0]
    return any(p in ("*", event_type, f"{family}.*") for p in patterns)


def _scalar(value: Any) -> bool:
    if isinstance(value, str):
        # JSON columns on PostgreSQL cannot store NUL; a filter value is a short token.
        return "\x00" not in value and len(value) <= MAX_STRING
    return value is None or isinstance(value, int | float | bool)


def payload_filter_errors(spec: Mapping[str, Any]) -> list[str]:
    """Everything wrong with a payload filter, as messages naming the path."""
    errors: list[str] = []
    if len(spec) > MAX_CONDITIONS:
        errors.append(f"at most {MAX_CONDITIONS} conditions")
    for path, condition in spec.items():
        if not PATH_PATTERN.match(path):
            errors.append(f"{path!r}: a path is dotted field names, e.g. goal.category")
            continue
        if not isinstance(condition, Mapping):
            if not _scalar(condition):
                errors.append(
                    f"{path!r}: shorthand value must be a string (at most {MAX_STRING} "
                    "characters), number, bool or null"
                )
            continue
        if not condition:
            errors.append(f"{path!r}: empty condition")
        for operator, operand in condition.items():
            if operator not in OPERATORS:
                errors.append(f"{path!r}: unknown operator {operator!r}")
            elif operator in ("$in", "$nin"):
                if (
                    not isinstance(operand, list)
                    or len(operand) > MAX_LIST
                    or not all(_scalar(item) for item in operand)
                ):
                    errors.append(f"{path!r}: {operator} takes a list of at most {MAX_LIST} values")
            elif operator == "$exists":
                if not isinstance(operand, bool):
                    errors.append(f"{path!r}: $exists takes true or false")
            elif not _scalar(operand):
                errors.append(f"{path!r}: {operator} takes a string, number, bool or null")
    return errors


def _lookup(data: Any, path: str) -> Any:
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def _holds(value: Any, condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return value is not _MISSING and value == condition
    for operator, operand in condition.items():
        present = value is not _MISSING
        if operator == "$exists":
            ok = present == operand
        elif operator == "$eq":
            ok = present and value == operand
        elif operator == "$ne":
            ok = not present or value != operand
        elif operator == "$in":
            ok = present and value in operand
        elif operator == "$nin":
            ok = not present or value not in operand
        else:
            ok = False
        if not ok:
            return False
    return True


def payload_matches(spec: Mapping[str, Any] | None, data: Mapping[str, Any]) -> bool:
    if not spec:
        return True
    return all(_holds(_lookup(data, path), condition) for path, condition in spec.items())
