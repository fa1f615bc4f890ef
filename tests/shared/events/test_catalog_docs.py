"""The committed event catalog (docs/events) is exactly what ``make catalog`` renders now.

A model changed without ``make catalog`` fails here, naming the stale files,
so integrators never build against a catalog that no longer matches the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from shared.events.catalog import ALL_EVENTS
from shared.events.export import render, stale_files

CATALOG = Path(__file__).resolve().parents[3] / "docs" / "events"


def test_the_committed_catalog_is_current() -> None:
    stale = stale_files(CATALOG)
    assert not stale, f"the event catalog is stale; run `make catalog` ({', '.join(stale)})"


def test_every_type_has_a_valid_schema_and_an_asyncapi_message() -> None:
    files = render()
    document = json.loads(files["asyncapi.json"])
    assert document["asyncapi"] == "3.0.0"
    for cls in ALL_EVENTS:
        event_type = cls.model_fields["type"].default
        schema = json.loads(files[f"schemas/{event_type}.json"])
        Draft202012Validator.check_schema(schema)
        assert schema["properties"]["type"]["const"] == event_type
        message = document["components"]["messages"][event_type.replace(".", "_")]
        assert _resolve(document, message["payload"]["$ref"])["title"]
    for name, channel in document["channels"].items():
        for ref in channel["messages"].values():
            assert _resolve(document, ref["$ref"])["name"].split(".")[0]
        operation = document["operations"][f"{name}.publish"]
        assert _resolve(document, operation["channel"]["$ref"]) is channel
        for ref in operation["messages"]:
            assert _resolve(document, ref["$ref"])


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    if isinstance(node, dict) and "$ref" in node:
        return _resolve(document, node["$ref"])
    return node
