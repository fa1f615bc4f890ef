"""Schemathesis against the notifications OpenAPI document, over real HTTP, bounded.

The service runs in its own thread and event loop (schemathesis calls are
synchronous); every operation gets a bounded number of generated requests
with a valid credential, and each answer must not be a 5xx and must match
the documented schema (status, content type, body).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from services.notifications.app import create_app
from services.notifications.settings import NotificationsSettings
from shared.auth.tokens import TENANT_ADMIN_SCOPE, TENANT_SCOPES
from tests.support.receiver import serve_asgi

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def served(
    notifications_settings: Callable[..., NotificationsSettings],
) -> Iterator[str]:
    """The app on a free port in a background thread, as a real deployment would be."""

    async def no_dns(host: str, port: int) -> list[str]:
        return ["192.0.2.1"]  # documentation range: every generated name is refused, offline

    app = create_app(notifications_settings(webhook_allowed_networks=[]), resolver=no_dns)
    ready = threading.Event()
    stop: dict[str, Any] = {}
    url: dict[str, str] = {}

    async def run() -> None:
        done = asyncio.Event()
        stop["loop"], stop["event"] = asyncio.get_running_loop(), done
        async with serve_asgi(app) as port:
            url["base"] = f"http://127.0.0.1:{port}"
            ready.set()
            await done.wait()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(60), "the service did not start"
    try:
        yield url["base"]
    finally:
        stop["loop"].call_soon_threadsafe(stop["event"].set)
        thread.join(30)


# Schemathesis' own strategies use `random`, which Hypothesis warns about; not our code.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_no_server_errors_and_answers_match_the_schema(
    served: str, auth_headers: Callable[..., dict[str, str]]
) -> None:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    headers = auth_headers("fuzz", (*TENANT_SCOPES, TENANT_ADMIN_SCOPE))
    operations: list[Any] = []
    for result in schema.get_all_operations():
        assert hasattr(result, "ok"), f"invalid operation in the schema: {result}"
        operations.append(result.ok())
    assert len(operations) >= 20
    strategy = st.one_of([operation.as_strategy() for operation in operations])
    failures: list[str] = []
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION * len(operations),
        deadline=None,
        database=None,
        # The same examples every run, so CI is reproducible (flip it locally to explore).
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(base_url=served, headers=headers, timeout=30)
        statuses.append(response.status_code)
        try:
            # Every check but "valid data is accepted": the schema cannot express the SSRF
            # guard or the payload filter grammar, which rightly refuse some schema-valid input.
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance], headers=headers
            )
        except Exception as error:  # collect, then report all at once
            failures.append(f"{case.method} {case.formatted_path}: {error}"[:2000])

    check()
    assert not failures, "\n\n".join(failures[:5])
    # The credential works: plenty of requests got past authentication and validation.
    assert sum(1 for code in statuses if 200 <= code < 300) >= len(operations)
    assert len(statuses) >= EXAMPLES_PER_OPERATION * len(operations) // 2
