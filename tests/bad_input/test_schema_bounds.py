"""Every input any API accepts is bounded, as its OpenAPI document says.

Walks every parameter and request body of the three services and finds each
string without a length bound, each array without ``maxItems`` and each open
object without ``maxProperties``: through such a field, one request could
store (and every later read return) a megabyte. The few fields bounded in
code instead of in the schema are listed with the check that bounds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.goals.app import create_app as create_goals
from services.goals.settings import GoalsSettings
from services.notifications.app import create_app as create_notifications
from services.notifications.settings import NotificationsSettings
from services.sessions.app import create_app as create_sessions
from services.sessions.settings import SessionsSettings

BOUNDED_FORMATS = {"date", "date-time", "time", "uuid", "email", "duration"}
UNBOUNDED_QUANTIFIER = re.compile(r"(?<!\\)[*+]|\{\d+,\}")
BOUNDED_IN_CODE = {
    # services/notifications/webhooks/matching.py payload_filter_errors: at most 20 conditions of
    # scalars (strings up to 1000 characters) or lists of at most 100 of them.
    ("notifications", "body.payload_filter"),
}


def _documents(tmp_path: Path) -> dict[str, dict[str, Any]]:
    common: dict[str, Any] = {"_env_file": None, "data_dir": tmp_path, "environment": "test"}
    return {
        "goals": create_goals(GoalsSettings(**common)).openapi(),
        "sessions": create_sessions(SessionsSettings(**common)).openapi(),
        "notifications": create_notifications(NotificationsSettings(**common)).openapi(),
    }


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _bounded_string(schema: dict[str, Any]) -> bool:
    if any(key in schema for key in ("maxLength", "enum", "const")):
        return True
    if schema.get("format") in BOUNDED_FORMATS:
        return True
    pattern = schema.get("pattern")
    return bool(
        pattern
        and pattern.startswith("^")
        and pattern.endswith("$")
        and not UNBOUNDED_QUANTIFIER.search(pattern)
    )


def _unbounded(
    document: dict[str, Any], schema: dict[str, Any], where: str, seen: frozenset[int]
) -> Iterator[str]:
    schema = _resolve(document, schema)
    if id(schema) in seen:
        return
    seen = seen | {id(schema)}
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from _unbounded(document, option, where, seen)
    kind = schema.get("type")
    if kind == "string" and not _bounded_string(schema):
        yield f"{where}: string without a length bound"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{where}: array without maxItems"
        yield from _unbounded(document, schema.get("items", {}), f"{where}[]", seen)
    if kind == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            yield from _unbounded(document, sub, f"{where}.{name}", seen)
        for sub in schema.get("patternProperties", {}).values():
            yield from _unbounded(document, sub, f"{where}.*", seen)
        extra = schema.get("additionalProperties")
        if extra not in (None, False) or (kind == "object" and not schema.get("properties")):
            if "maxProperties" not in schema:
                yield f"{where}: object without maxProperties"
            if isinstance(extra, dict):
                yield from _unbounded(document, extra, f"{where}.*", seen)


def test_every_parameter_and_body_field_is_bounded(tmp_path: Path) -> None:
    problems: list[str] = []
    operations = 0
    for service, document in _documents(tmp_path).items():
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                operations += 1
                found: list[str] = []
                for parameter in operation.get("parameters", []):
                    where = f"{parameter['in']}.{parameter['name']}"
                    found += _unbounded(document, parameter.get("schema", {}), where, frozenset())
                for content in operation.get("requestBody", {}).get("content", {}).values():
                    found += _unbounded(document, content.get("schema", {}), "body", frozenset())
                for item in dict.fromkeys(found):
                    field = item.split(":", 1)[0]
                    if (service, field) not in BOUNDED_IN_CODE:
                        problems.append(f"{service} {method.upper()} {path}: {item}")
    assert operations >= 60  # the walk saw every service's whole API
    assert not problems, "\n".join(problems)
