"""Signing in and out, CSRF, and what the console answers when it cannot reach a service.

The console runs over real HTTP; its services' URLs point at ports nobody
listens on, which is also how "a service is down" looks from the console.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from services.console.app import PAGE_ROUTERS, create_app
from services.console.signin import SESSION_COOKIE
from shared.auth.keys import generate_key
from shared.auth.tokens import TokenIssuer
from shared.devstack.processes import free_port
from tests.conftest import AUDIENCE, ISSUER
from tests.services.console.browser import Browser
from tests.services.console.conftest import console_settings
from tests.support.apps import serving

PUBLIC = {"/sign-in", "/healthz", "/readyz", "/metrics"}
SAMPLE_PARAMS = {
    "endpoint_id": "3f2a9c1e-0000-4000-8000-000000000001",
    "message_id": "evt-1",
    "goal_id": "3f2a9c1e-0000-4000-8000-000000000002",
    "service": "sessions",
    "dead_letter_id": "3f2a9c1e-0000-4000-8000-000000000003",
}


@pytest.fixture
async def console(keys_file: Path, tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    down = f"http://127.0.0.1:{free_port()}"
    settings = console_settings(
        keys_file, tmp_path, goals_url=down, sessions_url=down, notifications_url=down
    )
    app = create_app(settings)
    async with serving(app) as url:
        yield url, app


@pytest.fixture
async def browser(console: tuple[str, Any]) -> AsyncIterator[Browser]:
    client = Browser(console[0])
    try:
        yield client
    finally:
        await client.close()


def page_routes() -> list[tuple[str, str]]:
    """Every (method, concrete path) of the console's pages and actions, from its routers."""
    found = []
    for route in (r for router in PAGE_ROUTERS for r in router.routes):
        if not isinstance(route, APIRoute) or route.path in PUBLIC:
            continue
        path = route.path
        for name, value in SAMPLE_PARAMS.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"add a sample value for {route.path}"
        found += [(method, path) for method in sorted(route.methods or ())]
    return found


async def test_every_page_and_action_asks_for_sign_in_first(
    console: tuple[str, Any], browser: Browser
) -> None:
    routes = page_routes()
    assert {("GET", "/"), ("GET", "/goals"), ("POST", "/endpoints"), ("POST", "/sign-out")} <= set(
        routes
    )
    for method, path in routes:
        answer = await browser.http.request(method, path)
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"].startswith("/sign-in"), (method, path)
        as_json = await browser.http.request(method, path, headers={"Accept": "application/json"})
        assert as_json.status_code == 401, (method, path)
        assert as_json.headers["content-type"] == "application/problem+json"
    back = await browser.http.get("/goals?status=paused")
    assert back.headers["location"] == "/sign-in?next=%2Fgoals%3Fstatus%3Dpaused"


async def test_sign_in_checks_the_credential_here_and_keeps_it_out_of_reach(
    browser: Browser, token: Callable[..., str], private_jwk: dict[str, str]
) -> None:
    stranger = TokenIssuer(generate_key("other-key"), issuer=ISSUER, audience=AUDIENCE)
    ours = TokenIssuer(private_jwk, issuer=ISSUER, audience=AUDIENCE)
    expired = ours.mint("acme", ttl=timedelta(hours=1), now=datetime.now(UTC) - timedelta(days=1))
    for credential, status, says in [
        ("not a token", 401, "not a well-formed token"),
        (stranger.mint("acme"), 401, "unknown key"),
        (expired, 401, "expired"),
        ("", 422, "Paste a tenant credential"),
    ]:
        refused = await browser.sign_in(credential)
        assert refused.status_code == status, credential
        assert says in refused.text
        assert SESSION_COOKIE not in browser.http.cookies

    form = await browser.get("/sign-in")
    forged = await browser.http.post(
        "/sign-in", data={"credential": token("acme"), "csrf_token": "forged"}
    )
    assert forged.status_code == 403
    assert SESSION_COOKIE not in browser.http.cookies
    from_elsewhere = await browser.http.post(
        "/sign-in",
        data={**browser.form(form, "/sign-in").fields, "credential": token("acme")},
        headers={"Origin": "https://evil.example"},
    )
    assert from_elsewhere.status_code == 403

    credential = token("acme")
    page = await browser.get("/sign-in?next=/failures%3Fservice%3Dgoals")
    signed = await browser.submit(page, "/sign-in", credential=f"Bearer {credential}", follow=False)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/failures?service=goals"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert credential not in cookie
    assert credential.split(".")[1] not in cookie  # not even the claims, readable
    overview = await browser.get("/")
    assert overview.status_code == 200
    assert 'data-testid="tenant">acme<' in overview.text
    assert credential not in overview.text
    assert "<script" not in overview.text
    csp = overview.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # no script may run at all
    assert overview.headers["cache-control"] == "no-store"

    # Never somewhere else: the next page must be on this site.
    page = await browser.get("/sign-in?next=//evil.example/x")
    away = await browser.submit(page, "/sign-in", credential=credential, follow=False)
    assert away.headers["location"] == "/"


async def test_a_tampered_cookie_is_no_session(browser: Browser, token: Callable[..., str]) -> None:
    await browser.sign_in(token("acme"))
    sealed = browser.http.cookies[SESSION_COOKIE]
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    browser.http.cookies.set(SESSION_COOKIE, flipped, domain="127.0.0.1")
    answer = await browser.http.get("/endpoints")
    assert answer.status_code == 303
    assert "reason=expired" in answer.headers["location"]


async def test_signing_out_forgets_the_credential_even_in_a_copied_cookie(
    browser: Browser, token: Callable[..., str]
) -> None:
    overview = await browser.sign_in(token("acme"))
    copied = browser.http.cookies[SESSION_COOKIE]
    out = await browser.submit(overview, "/sign-out", follow=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/sign-in?notice=signed-out"
    assert any(
        c.startswith(f'{SESSION_COOKIE}=""') or "Max-Age=0" in c
        for c in out.headers.get_list("set-cookie")
    )
    assert SESSION_COOKIE not in browser.http.cookies
    browser.http.cookies.set(SESSION_COOKIE, copied, domain="127.0.0.1")
    replayed = await browser.http.get("/")
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/sign-in")


async def test_a_form_post_needs_this_sessions_csrf_token_and_our_origin(
    browser: Browser, token: Callable[..., str]
) -> None:
    await browser.sign_in(token("acme"))
    action = f"/endpoints/{SAMPLE_PARAMS['endpoint_id']}/test"
    for data in [{}, {"csrf_token": "guessed"}]:
        refused = await browser.http.post(action, data=data)
        assert refused.status_code == 403
        assert "The form was not accepted" in refused.text
    other = Browser(str(browser.http.base_url))
    try:
        other_page = await other.sign_in(token("acme"))
        someone_elses = other.form(other_page, "/sign-out").fields["csrf_token"]
    finally:
        await other.close()
    overview = await browser.get("/")
    mine = browser.form(overview, "/sign-out").fields["csrf_token"]
    assert someone_elses != mine
    refused = await browser.http.post(action, data={"csrf_token": someone_elses})
    assert refused.status_code == 403
    cross_site = await browser.http.post(
        action, data={"csrf_token": mine}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    # With the right token the console goes ahead, and finds the service down (503, not 403).
    accepted = await browser.http.post(
        action, data={"csrf_token": mine}, headers={"Origin": str(browser.http.base_url)}
    )
    assert accepted.status_code == 503


async def test_a_service_that_is_down_is_a_clear_page_never_a_trace(
    browser: Browser, token: Callable[..., str]
) -> None:
    await browser.sign_in(token("acme"))
    endpoints = await browser.get("/endpoints")
    assert endpoints.status_code == 503
    assert "Notifications is not answering" in endpoints.text
    assert "connection refused" in endpoints.text
    assert "make run" in endpoints.text  # says what to do
    assert "Traceback" not in endpoints.text
    overview = await browser.get("/")
    assert overview.status_code == 200  # each section fails on its own
    assert overview.text.count('class="panel-error"') == 2  # the chart and the ranking
    assert "unknown (" in overview.text  # failure counts say they are unknown
    as_json = await browser.get("/goals", headers={"Accept": "application/json"})
    assert as_json.status_code == 503
    assert as_json.headers["content-type"] == "application/problem+json"
    assert as_json.json()["title"] == "Sessions is not answering"


async def test_bad_addresses_and_values_are_named(
    browser: Browser, token: Callable[..., str]
) -> None:
    await browser.sign_in(token("acme"))
    missing = await browser.get("/no/such/page")
    assert missing.status_code == 404
    assert "No such page" in missing.text
    bad_filter = await browser.get("/messages?status=bogus")
    assert bad_filter.status_code == 400
    assert "query.status" in bad_filter.text
    bad_time = await browser.get("/messages?since=yesterday")
    assert bad_time.status_code == 400
    assert re.search(r"since.*date and time", bad_time.text)
    bad_id = await browser.get("/endpoints/not%20an%20id")
    assert bad_id.status_code == 400
    assert "path.endpoint_id" in bad_id.text


async def test_a_bug_or_an_unknown_answer_is_a_page_with_the_request_id_never_a_trace(
    keys_file: Path, tmp_path: Path, token: Callable[..., str]
) -> None:
    """A transport standing in for the services: one answers in an unknown shape, one breaks."""

    def services(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/endpoints":
            return httpx.Response(200, json={"endpoints": "not what the console knows"})
        raise RuntimeError("a bug on the way to the service")

    settings = console_settings(keys_file, tmp_path)
    app = create_app(settings, transport=httpx.MockTransport(services))
    async with serving(app) as url:
        browser = Browser(url)
        try:
            await browser.sign_in(token("acme"))
            unknown = await browser.get("/endpoints")
            assert unknown.status_code == 502
            assert "Notifications failed" in unknown.text
            assert "shape the console does not know" in unknown.text
            broken = await browser.get("/goals")
            assert broken.status_code == 500
            assert "Something went wrong in the console" in broken.text
            assert broken.headers["x-request-id"] in broken.text
            assert "RuntimeError" not in broken.text
            assert "Traceback" not in broken.text
            as_json = await browser.get("/goals", headers={"Accept": "application/json"})
            assert as_json.status_code == 500
            assert as_json.headers["content-type"] == "application/problem+json"
        finally:
            await browser.close()
