"""Schemathesis against the goals OpenAPI, over real HTTP on both databases.

Every operation gets generated requests (bounded: a few hundred in all); no
answer may be a 5xx, and every answer must match the document: a documented
status, the documented content type and headers, a body that fits the schema.
Cases come from the documented examples as well as from the schemas, and
path ids are sometimes swapped for a real goal and milestone of the caller's
tenant, so the operations get past validation and 404 and really run.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.services.goals.fixtures import GoalsApi

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _fuzz(
    document: dict[str, Any], base_url: str, headers: dict[str, str], known: dict[str, str]
) -> tuple[list[str], dict[str, Counter[int]]]:
    """Run every /v1 operation (in a thread: schemathesis calls are synchronous).

    Returns the failures and, per operation, how often each status was answered.
    """
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    answered: dict[str, Counter[int]] = defaultdict(Counter)
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"an operation could not be loaded: {result}")
            continue
        operation = result.ok()
        if not operation.path.startswith("/v1/"):
            continue
        label = f"{operation.method.upper()} {operation.path}"
        try:
            cases = st.one_of(
                *schema.get_strategies_from_examples(operation), operation.as_strategy()
            )
            _fuzz_operation(cases, base_url, headers, known, answered[label])
        except Exception as error:  # one entry per failing operation, then keep going
            failures.append(f"{label}: {error}"[:3000])
    return failures, answered


def _fuzz_operation(
    cases: st.SearchStrategy[Any],
    base_url: str,
    headers: dict[str, str],
    known: dict[str, str],
    answered: Counter[int],
) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=st.tuples(cases, st.booleans()))
    def run(drawn: tuple[Any, bool]) -> None:
        case, use_known = drawn
        if use_known and case.path_parameters:
            for name in case.path_parameters:
                if name in known:
                    case.path_parameters[name] = known[name]
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        answered[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


async def test_every_operation_answers_per_the_document(
    goals: GoalsApi, auth_headers: Callable[..., dict[str, str]]
) -> None:
    goal = await goals.create(external_ref="fuzz-goal")
    known = {
        "goal_id": goal["id"],
        "milestone_id": goal["milestones"][0]["id"],
        "external_ref": "fuzz-goal",
    }
    document = goals.app.openapi()
    failures, answered = await asyncio.to_thread(
        _fuzz, document, str(goals.http.base_url).rstrip("/"), auth_headers(), known
    )
    assert not failures, "\n\n".join(failures)
    # The run reached every operation, and got past validation and 404 on most of them.
    assert len(answered) >= 19, sorted(answered)
    succeeded = [label for label, statuses in answered.items() if any(s < 300 for s in statuses)]
    assert len(succeeded) >= 12, dict(answered)
    assert sum(sum(c.values()) for c in answered.values()) <= 19 * EXAMPLES_PER_OPERATION + 50
