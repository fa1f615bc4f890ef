"""The console in a real browser (Debian's Chromium, driven by Playwright) against the stack
``make run`` starts: broker, SMTP sink, the three services and the console as real processes.

An operator signs in, registers an endpoint, sends a test event and watches its attempt
arrive, makes the receiver fail, replays the failure and sees it succeed; a goal whose
check-in was really missed (its deadline a few seconds after it was created, on the real
clock) tops the risk ranking; pages ask for sign-in, tenants stay apart, and a forged
cross-site form changes nothing. Screenshots go to ``.data/screenshots/``.

Skipped, saying why, when Chromium is not installed (``apt-get install -y chromium``;
``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from standardwebhooks.webhooks import Webhook

from shared.devstack.processes import free_port, wait_until
from tests.support.receiver import Received, Reply, running_receiver
from tests.support.waiting import eventually

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (.ci/run does)",
    ),
]


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    log: Path

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


@pytest.fixture(scope="module")
def stack(keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """``python -m shared.devstack`` (what ``make run`` runs) on free ports, stopped by Ctrl-C."""
    workdir = tmp_path_factory.mktemp("console-e2e")
    names = ("broker", "smtp", "goals", "sessions", "notifications", "console")
    ports = {name: free_port() for name in names}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(
            ("STACK_", "FOLLOWTHROUGH_", "GOALS_", "SESSIONS_", "NOTIFICATIONS_", "CONSOLE_")
        )
    }
    env.update({f"STACK_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env.update(
        STACK_DATA_DIR=str(workdir / "data"),
        STACK_LOG_FORMAT="json",
        FOLLOWTHROUGH_AUTH_KEYS_FILE=str(keys_file),
        FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS="3000",  # quick group joins on Tansu
        # One attempt per delivery, so a failure is final at once and the replay is what heals it.
        NOTIFICATIONS_WEBHOOK_RETRY_SCHEDULE_SECONDS="[0]",
        NOTIFICATIONS_DISPATCH_POLL_SECONDS="0.1",
        PYTHONPATH=str(REPO),
    )
    log = workdir / "stack.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.devstack"],
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = RunningStack(process, ports, log)
    try:
        wait_until(
            lambda: '"event":"stack.ready"' in log.read_text(),
            timeout=90,
            interval=0.2,
            what="the stack's stack.ready",
            alive=lambda: process.poll() is None,
        )
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def reload_until(page: Page, selector: str, timeout: float = 30.0) -> None:
    """Reload until ``selector`` is on the page, as an operator watching it would."""
    async with asyncio.timeout(timeout):
        while await page.locator(selector).count() == 0:
            await asyncio.sleep(0.25)
            await page.reload()


async def sign_in(browser: Browser, console: str, credential: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{console}/")
    await expect(page).to_have_url(re.compile(r"/sign-in"))
    await page.fill("#credential", credential)
    await page.click("button:has-text('Sign in')")
    await expect(page.locator("h1")).to_have_text("Overview")
    return page


def tenant() -> str:
    return f"e2e{uuid.uuid4().hex[:10]}"


async def test_operator_sends_a_test_event_sees_it_fail_replays_it_and_sees_it_succeed(
    stack: RunningStack, browser: Browser, token: Callable[..., str]
) -> None:
    healthy = True

    def respond(_: Received) -> Reply:
        return Reply(200, b"received") if healthy else Reply(503, b"down for maintenance")

    console = stack.url("console")
    async with running_receiver(respond) as receiver:
        page = await sign_in(browser, console, token(tenant()))
        await shot(page, "01-overview")

        await page.click("nav >> text=Endpoints")
        await expect(page.locator(".empty")).to_contain_text("No webhook endpoints yet")
        await page.fill("#url", f"{receiver.url}/hook")
        await page.fill("#description", "the browser test's receiver")
        await page.click("button:has-text('Register')")
        secret = (await page.locator("[data-testid=secret]").inner_text()).strip()
        assert secret.startswith("whsec_")
        await shot(page, "02-secret-shown-once")

        await page.click("text=Go to the endpoint »")
        endpoint_url = page.url
        await page.click("button:has-text('Send test event')")
        await expect(page.locator(".notice")).to_contain_text("webhook.test")
        await reload_until(page, "[data-testid=attempt].ok")
        await expect(page.locator("[data-testid=attempt]")).to_contain_text("200")
        await expect(page.locator(".excerpt")).to_contain_text("received")
        await shot(page, "03-test-event-delivered")
        Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)

        healthy = False
        await page.goto(endpoint_url)
        await page.click("button:has-text('Send test event')")
        failed_url = page.url
        await reload_until(page, "h1 .badge-failed")
        await expect(page.locator("[data-testid=attempt].bad")).to_contain_text("503")
        await expect(page.locator(".excerpt")).to_contain_text("down for maintenance")
        await shot(page, "04-test-event-failed")

        healthy = True
        await page.click("button:has-text('Replay')")
        await expect(page.locator(".notice")).to_contain_text("same webhook-id")
        await reload_until(page, "h1 .badge-succeeded")
        assert page.url.split("?")[0] == failed_url.split("?")[0]
        await expect(page.locator("[data-testid=delivery]")).to_have_count(2)
        await expect(page.locator("[data-testid=delivery] .badge-superseded")).to_have_count(1)
        await shot(page, "05-replayed-and-succeeded")
        message_id = failed_url.split("?")[0].rsplit("/", 1)[1]
        assert [r.headers["webhook-id"] for r in receiver.requests].count(message_id) == 2

        await page.click("nav >> text=Overview")
        await expect(page.locator("figure.chart svg rect.seg-succeeded").first).to_be_visible()
        await shot(page, "06-overview-chart")


def goal(title: str, time_of_day: str) -> dict[str, Any]:
    return {
        "title": title,
        "participants": [
            {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "UTC"},
            {"role": "mentor", "name": "Grace", "email": "grace@example.com"},
        ],
        "policy": {
            "cadence": {"kind": "daily"},
            "time_of_day": time_of_day,
            "timezone": "UTC",
            "grace_minutes": 0,
        },
    }


async def first_due_of(http: httpx.AsyncClient, stack: RunningStack, goal_id: str) -> datetime:
    """When sessions planned the goal's first check-in (waiting until it has heard of it)."""
    planned: list[datetime] = []

    async def first_due() -> bool:
        answer = await http.get(f"{stack.url('sessions')}/v1/goals/{goal_id}/schedule")
        if answer.status_code == 404:  # not projected yet
            return False
        items = [i for i in answer.json()["items"] if i["kind"] == "checkin.due"]
        planned[:] = [datetime.fromisoformat(i["at"]) for i in items[:1]]
        return bool(planned)

    await eventually(first_due, timeout=30, interval=0.1, what="the first check-in planned")
    return planned[0]


async def goal_that_misses_soon(http: httpx.AsyncClient, stack: RunningStack) -> str:
    """A goal whose first check-in is due a few seconds from now.

    Sessions plans the first occurrence due after the moment it hears of the goal;
    if the event took longer than the margin (a loaded machine), it planned
    tomorrow's instead: abandon that goal and try again with a wider margin.
    """
    for margin in (6, 15, 30):
        due = (datetime.now(UTC) + timedelta(seconds=margin)).replace(microsecond=0)
        created = await http.post(
            f"{stack.url('goals')}/v1/goals",
            json=goal("Missed a check-in", due.strftime("%H:%M:%S")),
        )
        assert created.status_code == 201, created.text
        goal_id: str = created.json()["id"]
        planned = await first_due_of(http, stack, goal_id)
        if planned == due:
            return goal_id
        abandoned = await http.post(f"{stack.url('goals')}/v1/goals/{goal_id}/abandon")
        assert abandoned.status_code == 200, abandoned.text
    raise AssertionError("sessions never planned a check-in due within 30 s of now")


async def test_a_goal_with_a_missed_check_in_tops_the_risk_ranking(
    stack: RunningStack, browser: Browser, token: Callable[..., str]
) -> None:
    """A real miss on the real clock: the first check-in falls due seconds after the goal is
    created, with no grace period, and nobody checks in."""
    credential = token(tenant())
    headers = {"Authorization": f"Bearer {credential}"}
    later = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")
    async with httpx.AsyncClient(headers=headers, timeout=10) as http:
        for title in ("Keeps going", "Also fine"):
            created = await http.post(f"{stack.url('goals')}/v1/goals", json=goal(title, later))
            assert created.status_code == 201, created.text
        missed_id = await goal_that_misses_soon(http, stack)

        async def missed_ranks_first() -> bool:
            answer = await http.get(
                f"{stack.url('sessions')}/v1/goals", params={"order": "risk", "status": "active"}
            )
            items = answer.json()["items"]
            # Ranked first for the miss itself (an imminent first check-in can rank it
            # first before the miss has fired).
            return (
                len(items) == 3
                and items[0]["goal_id"] == missed_id
                and items[0]["consecutive_misses"] == 1
            )

        await eventually(
            missed_ranks_first, timeout=30, interval=0.25, what="the missed check-in ranked first"
        )

    page = await sign_in(browser, stack.url("console"), credential)
    await page.click("nav >> text=Goals")
    first = page.locator("[data-testid=ranking] tbody tr").first
    await expect(first.locator("a")).to_have_text("Missed a check-in")
    await expect(page.locator("[data-testid=ranking] tbody tr")).to_have_count(3)
    await shot(page, "07-risk-ranking")

    await first.locator("a").click()
    assert page.url.endswith(f"/goals/{missed_id}")
    await expect(page.locator("dt:text-is('Misses in a row') + dd")).to_have_text("1")
    await reload_until(page, "td:text-is('checkin.missed')")
    await shot(page, "08-goal-page")


async def test_pages_need_sign_in_tenants_stay_apart_and_forged_forms_change_nothing(
    stack: RunningStack, browser: Browser, token: Callable[..., str]
) -> None:
    console = stack.url("console")
    anonymous = await (await browser.new_context()).new_page()
    for path in ("/", "/endpoints", "/messages", "/goals", "/failures", "/goals/x-1"):
        await anonymous.goto(f"{console}{path}")
        assert "/sign-in" in anonymous.url, path
        await expect(anonymous.locator("h1")).to_have_text("Sign in")
    await shot(anonymous, "09-sign-in")

    owner = await sign_in(browser, console, token(tenant()))
    await owner.click("nav >> text=Endpoints")
    await owner.fill("#url", "http://127.0.0.1:9/owners-hook")
    await owner.click("button:has-text('Register')")
    await owner.click("text=Go to the endpoint »")
    endpoint_url = owner.url
    endpoint_path = endpoint_url.removeprefix(console)

    stranger = await sign_in(browser, console, token(tenant()))
    await stranger.click("nav >> text=Endpoints")
    await expect(stranger.locator("body")).not_to_contain_text("owners-hook")
    answer = await stranger.goto(endpoint_url)
    assert answer is not None
    assert answer.status == 404
    await expect(stranger.locator("h1")).to_have_text("Not found")
    await shot(stranger, "10-another-tenants-endpoint")

    # A post without this session's CSRF token is refused, in the owner's own browser.
    refused = await owner.context.request.post(f"{console}{endpoint_path}/disable", form={})
    assert refused.status == 403
    # A form on another site (localhost is not 127.0.0.1) posting into the console.
    evil = (
        f'<form method="post" action="{console}{endpoint_path}/disable">'
        '<input type="hidden" name="csrf_token" value="guessed">'
        "<button>Claim your prize</button></form>"
    ).encode()
    async with running_receiver(lambda _: Reply(200, evil, {"content-type": "text/html"})) as site:
        await owner.goto(f"http://localhost:{site.port}/prize")
        await owner.click("text=Claim your prize")
        await owner.wait_for_load_state()
        assert "disabled" not in owner.url
    await owner.goto(endpoint_url)
    await expect(owner.locator("button:has-text('Disable')")).to_be_visible()  # still enabled

    await owner.click("button:has-text('Sign out')")
    await expect(owner.locator(".notice")).to_contain_text("forgotten your credential")
    await owner.goto(endpoint_url)
    assert "/sign-in" in owner.url
    assert not any(cookie["name"] == "ft_console" for cookie in await owner.context.cookies())
