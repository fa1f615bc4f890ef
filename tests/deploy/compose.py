"""Reading docker-compose.yml the way Compose does: environment forms and ${...} interpolation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)
REQUIRED = (":?", "?")


@dataclass(frozen=True)
class Reference:
    """One ``${NAME...}`` in a value: its variable and operator (None for a plain reference)."""

    name: str
    op: str | None
    arg: str


def references(value: str) -> list[Reference]:
    found: list[Reference] = []
    for match in _INTERPOLATION.finditer(value):
        if match["escaped"]:
            continue
        if match["bare"]:
            found.append(Reference(match["bare"], None, ""))
            continue
        braced = _BRACED.match(match["braced"])
        if braced is None:
            raise ValueError(f"malformed interpolation in {value!r}")
        found.append(Reference(braced["name"], braced["op"], braced["arg"] or ""))
    return found


def interpolate(value: str, supplied: Mapping[str, str]) -> str:
    """Substitute as ``docker compose`` would with ``supplied`` as the operator's environment.

    A required variable (``:?``) must be in ``supplied``; a plain ``${X}`` is an
    error here because an unset variable would silently become an empty string.
    """

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        (reference,) = references(match.group(0))
        if reference.op in REQUIRED:
            if reference.name not in supplied:
                raise AssertionError(f"required variable {reference.name} not supplied")
            return supplied[reference.name]
        if reference.op in (":-", "-"):
            return supplied.get(reference.name, reference.arg)
        raise AssertionError(
            f"${{{reference.name}}} in {value!r} has neither a default nor ':?': "
            "left unset it would silently be empty"
        )

    return _INTERPOLATION.sub(substitute, value)


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, from either the mapping or the list form."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    result: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            result[key] = "true" if value else "false"
        else:
            result[key] = "" if value is None else str(value)
    return result


def required_variables(document: Any) -> set[str]:
    """Every variable the file requires with ``:?``, anywhere in it."""
    names: set[str] = set()
    if isinstance(document, str):
        names |= {ref.name for ref in references(document) if ref.op in REQUIRED}
    elif isinstance(document, Mapping):
        for value in document.values():
            names |= required_variables(value)
    elif isinstance(document, list):
        for value in document:
            names |= required_variables(value)
    return names
