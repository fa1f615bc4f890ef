"""The event catalog for integrators: JSON Schemas and an AsyncAPI 3.0 document, from the models.

``make catalog`` (``python -m shared.events.export docs/events``) writes:

* ``schemas/<type>.json``: one self-contained JSON Schema (2020-12) per event
  type, of the event exactly as published (structured-mode CloudEvent);
* ``asyncapi.json``: channels (the Kafka topics), messages (one per type, keyed
  by goal id) and the send operation of each service;
* ``README.md``: an index.

Nothing here is written by hand, so the catalog cannot drift from the code; a
test renders it again and fails when the committed copy is stale.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.events.catalog import ALL_EVENTS
from shared.events.envelope import CloudEvent

SCHEMA_BASE = "https://followthrough.dev/events/"
SENDERS = {
    "goals": "the goals service",
    "sessions": "the sessions service",
    "notifications": "the notifications service",
    "privacy": "every service (goals the request, sessions and notifications their part)",
    "control": "the operator CLI",
}
CONTENT_TYPE = "application/cloudevents+json"
UNPUBLISHED = {"webhook.test"}  # sent to one endpoint by its test call, never to Kafka


def _type_of(cls: type[CloudEvent]) -> str:
    name: str = cls.model_fields["type"].default
    return name


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _summary(cls: type[CloudEvent]) -> str:
    doc = (cls.__doc__ or "").strip()
    if doc and not doc.startswith("Attributes common to all events"):
        return doc.splitlines()[0]
    data = cls.model_fields["data"].annotation
    data_doc = (getattr(data, "__doc__", "") or "").strip()
    return data_doc.splitlines()[0] if data_doc else f"The {_type_of(cls)} event."


def event_schema(cls: type[CloudEvent]) -> dict[str, Any]:
    """One type's schema, self-contained (its definitions under ``$defs``)."""
    schema = cls.model_json_schema(mode="serialization")
    event_type = _type_of(cls)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}schemas/{event_type}.json",
        **schema,
        "title": event_type,
        "description": _summary(cls),
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: every topic, every message type, who sends what."""
    keys, shared = models_json_schema(
        [(cls, "serialization") for cls in ALL_EVENTS],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = shared.get("$defs", {})
    by_topic: dict[str, list[type[CloudEvent]]] = defaultdict(list)
    for cls in ALL_EVENTS:
        by_topic[cls.topic].append(cls)
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic, classes in by_topic.items():
        channel_messages = {}
        for cls in classes:
            event_type = _type_of(cls)
            name = event_type.replace(".", "_")
            payload_ref = keys[(cls, "serialization")]["$ref"]
            messages[name] = {
                "name": event_type,
                "title": event_type,
                "summary": _summary(cls),
                "contentType": CONTENT_TYPE,
                "payload": {"$ref": payload_ref},
                "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
                "bindings": {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "description": "The partitionkey: the goal id (on the control "
                            "topic, the credential id; on the privacy topic, the erasure id).",
                        },
                        "bindingVersion": "0.5.0",
                    }
                },
                "externalDocs": {"url": f"{SCHEMA_BASE}schemas/{event_type}.json"},
            }
            if event_type not in UNPUBLISHED:
                channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[topic] = {
            "address": topic,
            "title": f"{topic} topic",
            "description": f"Events {SENDERS.get(topic, topic)} publishes. "
            "Deployments may prefix topic names (KAFKA_TOPIC_PREFIX).",
            "messages": channel_messages,
        }
        operations[f"{topic}.publish"] = {
            "action": "send",
            "title": f"{_sentence(SENDERS.get(topic, topic))} publishes",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [
                {"$ref": f"#/channels/{topic}/messages/{name}"} for name in channel_messages
            ],
        }
    schemas["KafkaHeaders"] = {
        "type": "object",
        "properties": {
            "content-type": {
                "type": "string",
                "const": "application/cloudevents+json; charset=utf-8",
            },
            "correlation-id": {"type": "string", "description": "The event's correlationid."},
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Followthrough events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 in structured JSON on Kafka, keyed by goal id so "
            "each goal's events stay in order. Consumers deduplicate by `id`; `correlationid` "
            "follows everything one request caused, `causationid` names the event that caused "
            "this one. Data fields may be added (consumers must ignore unknown fields); none "
            "is renamed or removed within a `schemaversion`.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _index() -> str:
    lines = [
        "# Event catalog",
        "",
        "Generated from the event models by `make catalog`; do not edit by hand.",
        "",
        "- [`asyncapi.json`](asyncapi.json): AsyncAPI 3.0 document (topics, messages, senders).",
        "- `schemas/<type>.json`: one JSON Schema (2020-12) per event type.",
        "",
        "| type | topic | summary |",
        "|---|---|---|",
    ]
    for cls in ALL_EVENTS:
        event_type = _type_of(cls)
        topic = "(one endpoint only)" if event_type in UNPUBLISHED else f"`{cls.topic}`"
        lines.append(f"| [`{event_type}`](schemas/{event_type}.json) | {topic} | {_summary(cls)} |")
    return "\n".join(lines) + "\n"


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Every catalog file by its path relative to the catalog folder."""
    files = {f"schemas/{_type_of(cls)}.json": _dump(event_schema(cls)) for cls in ALL_EVENTS}
    files["asyncapi.json"] = _dump(asyncapi())
    files["README.md"] = _index()
    return files


def stale_files(folder: Path) -> list[str]:
    """Files missing, different, or left over in ``folder`` compared with a fresh render."""
    fresh = render()
    stale = [name for name, text in fresh.items() if _read(folder / name) != text]
    existing = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return sorted(stale + [name for name in existing - set(fresh)])


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def write(folder: Path) -> list[str]:
    fresh = render()
    for name in stale_files(folder):
        path = folder / name
        if name in fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(fresh[name], encoding="utf-8")
        else:
            path.unlink()
    return sorted(fresh)


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "docs/events")
    written = write(folder)
    sys.stdout.write(f"event catalog: {len(written)} files in {folder}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
