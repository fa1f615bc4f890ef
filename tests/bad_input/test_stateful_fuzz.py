"""Schemathesis, stateful, against all three services: chains of calls built from responses.

Schemathesis links operations from the OpenAPI documents themselves (a
response's ``id`` feeds the path parameters that name it: create a goal,
then patch it, pause it, add a milestone and complete it; register an
endpoint, rotate its secret, send a test event, delete it) and runs random
sequences of them, each step's data coming from earlier answers. No answer may
be a 5xx, every answer must match the document, and the stateful checks hold:
a created resource can be read back, a deleted one is gone. Bounded and
seeded so CI runs the same sequences every time; the stateless
per-operation fuzzing lives next to each service's tests. Schemathesis' own
runner does the stateful phase (in a process of its own): it copes with a
live API whose state grows between scenarios, which a bare Hypothesis state
machine reports as flaky data generation. The links are those schemathesis
infers plus explicit ones from each operation that makes a resource to those
that name it (``with_links``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import StackFactory

pytestmark = pytest.mark.reliability  # ~20 s of sequences: make reliability, not make test

SCENARIOS = 30


PRODUCERS = {
    # operation that makes a resource: (status, {path parameter: where its value is in the body})
    ("post", "/v1/goals"): ("201", {"goal_id": "/id", "milestone_id": "/milestones/0/id"}),
    ("put", "/v1/goals/by-ref/{external_ref}"): (
        "201",
        {"goal_id": "/id", "milestone_id": "/milestones/0/id"},
    ),
    ("post", "/v1/goals/{goal_id}/milestones"): ("201", {"milestone_id": "/id"}),
    ("post", "/v1/checkins"): ("201", {"goal_id": "/goal_id"}),
    ("post", "/v1/sessions"): ("201", {"session_id": "/id", "goal_id": "/goal_id"}),
    ("post", "/v1/endpoints"): ("201", {"endpoint_id": "/id"}),
}


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI links from each operation that makes a resource to every one that names it."""
    operations = [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    for (method, path), (status, sources) in PRODUCERS.items():
        producer = document["paths"].get(path, {}).get(method)
        if producer is None or status not in producer["responses"]:
            continue
        links = producer["responses"][status].setdefault("links", {})
        for _, target_path, target in operations:
            wanted = set(re.findall(r"\{(\w+)\}", target_path))
            if not wanted or not wanted <= sources.keys():
                continue
            parameters = {name: f"$response.body#{sources[name]}" for name in wanted}
            links[target["operationId"]] = {
                "operationId": target["operationId"],
                "parameters": parameters,
            }
    return document


CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "use_after_free",
        "ensure_resource_availability",
    ]
)
LINKS_COVERED = re.compile(r"API Links:\s+(\d+) covered")


async def _run(document: Path, base_url: str, authorization: str) -> tuple[int, str]:
    """Schemathesis' own runner (examples, then stateful sequences), as a process."""
    command = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        str(document),
        "--url",
        base_url,
        "--phases",
        "examples,stateful",
        "--mode",
        "positive",
        "--max-examples",
        str(SCENARIOS),
        "--seed",
        "1",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: {authorization}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(command.communicate(), 240)
    assert command.returncode is not None
    return command.returncode, out.decode(errors="replace")


async def test_call_sequences_on_every_service_answer_per_the_document(
    stack: StackFactory, auth_headers: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    covered: dict[str, int] = {}
    async with stack() as running:
        for name, app in running.apps.items():
            document = tmp_path / f"{name}.json"
            document.write_text(json.dumps(with_links(app.openapi())))
            code, report = await _run(document, running.urls[name], auth_headers()["Authorization"])
            assert code == 0, report[-6000:]
            found = LINKS_COVERED.search(report)
            assert found, report[-3000:]
            covered[name] = int(found.group(1))
    # Sequences really chained: each service had calls fed by an earlier answer.
    assert all(count >= 1 for count in covered.values()), covered
