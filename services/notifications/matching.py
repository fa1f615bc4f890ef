"""Which endpoints want which events: exact names, family wildcards, or everything."""

from __future__ import annotations

import re
from collections.abc import Iterable

FILTER_PATTERN = re.compile(r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$")


def valid_filter(pattern: str) -> bool:
    return bool(FILTER_PATTERN.match(pattern))


def type_matches(filters: Iterable[str], event_type: str) -> bool:
    """An empty filter list means every event type."""
    patterns = list(filters)
    if not patterns:
        return True
    family = event_type.split(".", 1)[0]
    return any(p in ("*", event_type, f"{family}.*") for p in patterns)
