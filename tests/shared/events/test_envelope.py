"""The CloudEvents envelope: a real event survives the wire; every bad input has a typed error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.context import bound
from shared.events import (
    InvalidEventError,
    MalformedEventError,
    UnknownEventTypeError,
    build_event,
    parse_event,
)
from shared.events.catalog.goals import MilestoneCompleted
from shared.events.catalog.notifications import EndpointDisabled, EndpointDisabledData
from tests.support.events import milestone_completed


def wire(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(milestone_completed().to_json())
    document.update(changes)
    return document


def test_a_real_event_round_trips_through_structured_json() -> None:
    event = milestone_completed("goal-7")

    raw = event.to_json()
    parsed = parse_event(raw)

    assert isinstance(parsed, MilestoneCompleted)
    assert parsed == event
    assert parsed.data.goal.participants[0].timezone == "Europe/Berlin"
    document = json.loads(raw)
    assert document["specversion"] == "1.0"
    assert document["type"] == "milestone.completed"
    assert document["time"] == "2026-03-29T00:30:00Z"
    assert document["partitionkey"] == "goal-7"
    assert document["causationid"] == "evt-cause"
    assert "dataschema" not in document  # absent optional attributes are omitted, not null
    assert document == event.to_dict()
    assert parse_event(document) == event  # an already decoded object parses the same


def test_build_event_takes_correlation_and_causation_from_the_context() -> None:
    data = EndpointDisabledData(endpoint_id="ep-1", url="https://example.com/", reason="gone")
    with bound(correlation_id="corr-ctx", event_id="evt-handled"):
        event = build_event(
            EndpointDisabled, data, tenant_id="acme", partition_key="ep-1", source="/t"
        )
    assert event.correlationid == "corr-ctx"
    assert event.causationid == "evt-handled"

    outside = build_event(
        EndpointDisabled, data, tenant_id="acme", partition_key="ep-1", source="/t"
    )
    assert outside.causationid is None
    assert outside.correlationid not in {"", "corr-ctx"}
    assert outside.id != event.id


def test_unknown_type_names_the_type() -> None:
    with pytest.raises(UnknownEventTypeError) as caught:
        parse_event(json.dumps(wire(type="goal.exploded")))
    assert caught.value.event_type == "goal.exploded"
    assert caught.value.reason == "unknown_event_type"


def test_missing_type_is_invalid_and_names_type() -> None:
    document = wire()
    del document["type"]
    with pytest.raises(InvalidEventError) as caught:
        parse_event(json.dumps(document))
    assert caught.value.fields == ["type"]


def test_invalid_data_names_each_field_by_its_path() -> None:
    document = wire()
    document["data"]["goal"]["participants"][0]["email"] = "not-an-address"
    del document["data"]["milestone"]["title"]

    with pytest.raises(InvalidEventError) as caught:
        parse_event(json.dumps(document).encode())

    error = caught.value
    assert error.reason == "invalid_event_data"
    assert error.event_type == "milestone.completed"
    assert sorted(error.fields) == ["data.goal.participants.0.email", "data.milestone.title"]
    assert "data.milestone.title" in str(error)


def test_invalid_envelope_attribute_is_named() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(json.dumps(wire(tenantid="Not A Tenant!", time="yesterday")))
    assert sorted(caught.value.fields) == ["tenantid", "time"]


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(json.dumps(wire(time="2026-03-29T00:30:00")))
    assert caught.value.fields == ["time"]


@pytest.mark.parametrize(
    "raw",
    [b'{"type": "milestone.completed", ', b"", b"not json at all", b"{'single': 'quotes'}"],
    ids=["truncated", "empty", "text", "python-repr"],
)
def test_malformed_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedEventError) as caught:
        parse_event(raw)
    assert caught.value.reason == "malformed_json"


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"milestone.completed"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedEventError, match="not a JSON object"):
        parse_event(raw)


def test_invalid_utf8_is_malformed_and_says_so() -> None:
    raw = milestone_completed().to_json().replace(b"Ada", b"Ad\xff")
    with pytest.raises(MalformedEventError, match="UTF-8"):
        parse_event(raw)
