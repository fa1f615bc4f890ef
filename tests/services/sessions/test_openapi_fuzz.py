"""Schemathesis against the sessions OpenAPI, over real HTTP on both databases (bounded run).

Every /v1 operation gets generated requests, from its schema and documented examples; no
answer may be a 5xx and every answer must match the document (status, content type,
headers, body schema). Path ids are sometimes swapped for a real goal (with a missed
check-in, so acknowledge can succeed) and a real coaching session of the caller's tenant,
and a body's goal_id likewise, so operations get past 404 and really run.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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

from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from tests.services.sessions.support import (
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    weekly,
)

EXAMPLES_PER_OPERATION = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
START = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _fuzz(
    document: dict[str, Any], base_url: str, headers: dict[str, str], known: dict[str, str]
) -> tuple[list[str], dict[str, Counter[int]]]:
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
        if use_known:
            for name in case.path_parameters or {}:
                if name in known:
                    case.path_parameters[name] = known[name]
            if isinstance(case.body, dict) and "goal_id" in case.body:
                case.body["goal_id"] = known["goal_id"]
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        answered[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


async def test_every_operation_answers_per_the_document(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    policy = weekly(
        ["MO", "WE", "FR"], escalation=[{"after_misses": 1, "notify_roles": ["mentor"]}]
    )
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [goal_event(snapshot(goal_id, policy=policy, at=START), at=START)],
        )
        await app.wait_projected(goal_id)
        session = await app.http.post(
            "/v1/sessions",
            json={
                "goal_id": goal_id,
                "starts_at": (START + timedelta(days=3)).isoformat(),
                "duration_minutes": 30,
                "location": "Room 1",
            },
            headers=app.headers,
        )
        assert session.status_code == 201, session.text
        # Monday's check-in is missed, so acknowledge has something to act on.
        await app.step_to(START + timedelta(days=1, hours=2))
        known = {"goal_id": goal_id, "session_id": session.json()["id"]}
        failures, answered = await asyncio.to_thread(
            _fuzz,
            app.app.openapi(),
            str(app.http.base_url).rstrip("/"),
            auth_headers(),
            known,
        )
    assert not failures, "\n\n".join(failures)
    assert len(answered) == 15, sorted(answered)  # 13 of its own, 2 dead-letter routes
    succeeded = [label for label, statuses in answered.items() if any(s < 300 for s in statuses)]
    assert len(succeeded) >= 8, dict(answered)
