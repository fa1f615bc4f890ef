"""Schemathesis over real HTTP against a service's own OpenAPI document (a bounded run).

Every /v1 operation gets generated requests, from its schema and its
documented examples; no answer may be a 5xx, and every answer must match the
document: a documented status, the documented content type and headers, a
body that fits the schema. Path ids (and, where asked, body fields) are
sometimes swapped for real ids of the caller's tenant, so the operations get
past validation and 404 and really run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
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

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(
    document: dict[str, Any],
    base_url: str,
    headers: dict[str, str],
    known: dict[str, str],
    *,
    examples_per_operation: int,
    body_fields: Sequence[str] = (),
) -> tuple[list[str], dict[str, Counter[int]]]:
    """Run every /v1 operation (synchronous: call it on a thread from a test's loop).

    ``known`` maps path parameters (and the ``body_fields`` named) to real
    values. Returns the failures and, per operation, how often each status
    was answered.
    """
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    answered: dict[str, Counter[int]] = defaultdict(Counter)
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"invalid operation in the document: {result.err()}")
            continue
        operation = result.ok()
        if not operation.path.startswith("/v1/"):
            continue
        label = f"{operation.method.upper()} {operation.path}"
        try:
            cases = st.one_of(
                *schema.get_strategies_from_examples(operation), operation.as_strategy()
            )
            _fuzz_operation(
                cases,
                base_url,
                headers,
                known,
                answered[label],
                examples=examples_per_operation,
                body_fields=body_fields,
            )
        except Exception as error:  # one entry per failing operation, then keep going
            failures.append(f"{label}: {error}"[:3000])
    return failures, answered


def _fuzz_operation(
    cases: st.SearchStrategy[Any],
    base_url: str,
    headers: dict[str, str],
    known: dict[str, str],
    answered: Counter[int],
    *,
    examples: int,
    body_fields: Sequence[str],
) -> None:
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=st.tuples(cases, st.booleans()))
    def run(drawn: tuple[Any, bool]) -> None:
        case, use_known = drawn
        if use_known:
            for name in case.path_parameters or {}:
                if name in known:
                    case.path_parameters[name] = known[name]
            if isinstance(case.body, dict):
                for name in body_fields:
                    if name in case.body:
                        case.body[name] = known[name]
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        answered[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()
