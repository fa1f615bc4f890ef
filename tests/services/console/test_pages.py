"""The console's pages against the real services (in-process, real HTTP, the real broker).

Everything is done through the console's own pages and forms, as an
operator would; the services' APIs are called directly only to create what
an integrator would (goals, check-ins) and to check the console told the truth.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from shared.auth.tokens import TENANT_ADMIN_SCOPE, TENANT_SCOPES
from shared.events import build_event
from shared.events.catalog.goals import GoalCreated, GoalEventData
from tests.services.console.browser import Browser
from tests.services.console.conftest import Stack
from tests.services.sessions.support import snapshot
from tests.support.kafka import produce
from tests.support.receiver import Reply, running_receiver

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def eventually_page(
    browser: Browser, path: str, holds: Callable[[str], bool], timeout: float = 20.0
) -> str:
    """Reload ``path`` until its HTML satisfies ``holds`` (what a person does with F5)."""
    async with asyncio.timeout(timeout):
        while True:
            page = await browser.get(path)
            assert page.status_code == 200, page.text
            if holds(page.text):
                return page.text
            await asyncio.sleep(0.1)


def tenant() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def signed_in(stack: Stack, credential: str) -> Browser:
    browser = Browser(stack.console)
    page = await browser.sign_in(credential)
    assert page.status_code == 200, page.text
    return browser


async def test_endpoint_test_event_failure_replay_rotation_and_recover(
    stack: Stack, token: Callable[..., str]
) -> None:
    healthy = True

    def respond(_: Any) -> Reply:
        return Reply(status=200, body=b"thanks") if healthy else Reply(status=500, body=b"boom")

    browser = await signed_in(stack, token(tenant()))
    async with running_receiver(respond) as receiver:
        empty = await browser.get("/endpoints")
        assert "No webhook endpoints yet" in empty.text

        refused = await browser.submit(empty, "/endpoints", url="ftp://nowhere")
        assert refused.status_code == 422
        assert "Not registered" in refused.text
        assert "<strong>URL</strong>" in refused.text
        assert 'value="ftp://nowhere"' in refused.text  # what was typed stays

        shown = await browser.submit(
            empty, "/endpoints", url=f"{receiver.url}/hook", description="receiver"
        )
        assert shown.status_code == 200
        secret = re.search(r'data-testid="secret">(whsec_[^<]+)<', shown.text)
        assert secret, shown.text
        assert shown.headers["cache-control"] == "no-store"
        endpoint_id = re.search(r"/endpoints/([0-9a-f-]{36})/secret", str(shown.url))
        assert endpoint_id
        endpoint_path = f"/endpoints/{endpoint_id.group(1)}"
        again = await browser.get(f"{endpoint_path}/secret")
        assert secret.group(1) not in again.text  # shown once
        assert "was shown once" in again.text

        detail = await browser.get(endpoint_path)
        assert "No attempts in the last 24 hours" in detail.text
        message_page = await browser.submit(detail, f"{endpoint_path}/test")
        message_path = message_page.url.path
        assert message_path.startswith("/messages/")
        assert "A webhook.test event is on its way" in message_page.text
        text = await eventually_page(browser, message_path, lambda t: 'data-testid="attempt"' in t)
        assert 'badge-succeeded">200<' in text
        assert "thanks" in text  # the response excerpt
        assert receiver.requests[0].headers["webhook-id"] == message_path.rsplit("/", 1)[1]

        healthy = False
        detail = await browser.get(endpoint_path)
        failing = await browser.submit(detail, f"{endpoint_path}/test")
        failed_path = failing.url.path
        text = await eventually_page(
            browser,
            failed_path,
            lambda t: 'badge-failed">500<' in t and 'badge-failed">failed<' in t,
        )
        assert "boom" in text
        failures = await browser.get("/failures")
        assert failed_path in failures.text  # listed among failed deliveries

        healthy = True
        page = await browser.get(failed_path)
        replayed = await browser.submit(page, f"{failed_path}/replay")
        assert "queued again, with the same webhook-id" in replayed.text
        text = await eventually_page(
            browser, failed_path, lambda t: 'badge-succeeded">succeeded<' in t
        )
        assert "superseded" in text  # the failed delivery stays in the log
        ids = [r.headers["webhook-id"] for r in receiver.requests]
        assert ids.count(failed_path.rsplit("/", 1)[1]) == 2  # same webhook-id on the replay

        figures = await eventually_page(
            browser, endpoint_path, lambda t: 'data-testid="attempts">3' in t
        )
        assert "66.7 %" in figures  # 2 of 3 attempts succeeded (test, failed test, replay)

        disabled = await browser.submit(
            await browser.get(endpoint_path), f"{endpoint_path}/disable"
        )
        assert "badge-disabled" in disabled.text
        enabled = await browser.submit(disabled, f"{endpoint_path}/enable")
        assert "badge-enabled" in enabled.text

        rotated = await browser.submit(enabled, f"{endpoint_path}/rotate-secret")
        new_secret = re.search(r'data-testid="secret">(whsec_[^<]+)<', rotated.text)
        assert new_secret
        assert new_secret.group(1) != secret.group(1)

        recovered = await browser.submit(
            await browser.get(endpoint_path), f"{endpoint_path}/recover", since="2020-01-01T00:00"
        )
        assert "Every failed delivery since then is queued again" in recovered.text

        overview = await browser.get("/")
        assert "<svg" in overview.text
        assert 'class="seg seg-succeeded"' in overview.text
        assert re.search(r"\d+ deliveries in the last 24 hours", overview.text)
    await browser.close()


async def test_a_missed_check_in_tops_the_ranking_and_the_goal_page_tells_its_story(
    stack: Stack, token: Callable[..., str]
) -> None:
    name = tenant()
    credential = token(name)
    headers = {"Authorization": f"Bearer {credential}"}
    now = stack.clock.now()
    due = now + timedelta(hours=1)
    policy = {
        "cadence": {"kind": "daily"},
        "time_of_day": due.strftime("%H:%M:%S"),
        "timezone": "UTC",
        "grace_minutes": 0,
        "reminder_lead_minutes": [30],
        "escalation": [{"after_misses": 1, "notify_roles": ["mentor"]}],
    }
    people = [
        {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "UTC"},
        {"role": "mentor", "name": "Grace", "email": "grace@example.com"},
    ]
    async with httpx.AsyncClient(base_url=stack.goals, headers=headers, timeout=10) as goals:
        created = []
        for title, goal_policy in [("Steady", None), ("Slipping", policy), ("Fresh", None)]:
            answer = await goals.post(
                "/v1/goals",
                json={
                    "title": title,
                    "participants": people,
                    "policy": goal_policy,
                    "milestones": [{"title": "First 5 km"}],
                },
            )
            assert answer.status_code == 201, answer.text
            created.append(answer.json()["id"])
    steady, slipping, _ = created
    browser = await signed_in(stack, credential)
    await eventually_page(browser, "/goals", lambda t: t.count('href="/goals/') == 3)

    await stack.clock.set(due + timedelta(minutes=1))  # the check-in deadline passes
    await stack.sessions_app.state.scheduler.wait_caught_up(stack.clock.now())
    ranking = await eventually_page(
        browser, "/goals", lambda t: _first_goal(t) == slipping, timeout=10
    )
    assert "Slipping" in ranking
    assert "badge-low" in ranking

    page = await eventually_page(
        browser, f"/goals/{slipping}", lambda t: "<td>checkin.missed</td>" in t
    )
    assert "Ada" in page  # participants
    assert "grace@example.com" in page
    assert "First 5 km" in page  # milestones
    assert "Misses in a row</dt><dd>1<" in page
    assert "consecutive misses" in page  # the score's factors
    assert "checkin.due" in page  # the forecast of what comes next
    assert "(if missed)" in page
    assert "deliveries and attempts" in page  # each event links to its deliveries
    # Each participant's calendar feeds, and they answer as calendars.
    feeds = re.findall(r'<a href="(http[^"]+/v1/calendars/[^"]+\.ics)" rel="noreferrer">feed', page)
    assert len(set(feeds)) == len(feeds) == 4  # Ada's and Grace's: this goal, all their goals
    path = feeds[0].split("/v1/calendars/", 1)[1]
    async with httpx.AsyncClient(base_url=stack.sessions) as plain:
        calendar = await plain.get(f"/v1/calendars/{path}")
    assert calendar.status_code == 200, calendar.json()["detail"]
    assert calendar.headers["content-type"] == "text/calendar; charset=utf-8"
    event_link = re.search(r'href="(/messages/[^"]+)">deliveries and attempts', page)
    assert event_link
    message = await browser.get(event_link.group(1))
    assert message.status_code == 200
    assert "Routing" in message.text

    other = await browser.get(f"/goals/{steady}")
    assert "No check-ins yet" in other.text
    await browser.close()


def _first_goal(html: str) -> str | None:
    found = re.search(r'data-testid="ranking">.*?href="/goals/([^"]+)"', html, re.S)
    return found.group(1) if found else None


async def test_messages_filter_and_page(stack: Stack, token: Callable[..., str]) -> None:
    browser = await signed_in(stack, token(tenant()))
    async with running_receiver() as receiver:
        registered = await browser.submit(
            await browser.get("/endpoints"), "/endpoints", url=f"{receiver.url}/hook"
        )
        endpoint_path = re.sub(r"/secret$", "", registered.url.path)
        for _ in range(6):
            await browser.submit(await browser.get(endpoint_path), f"{endpoint_path}/test")
        await receiver.wait_for(6)
    first = await eventually_page(browser, "/messages?status=succeeded", lambda t: "Next page" in t)
    assert first.count('href="/messages/') == 5  # the console's page size
    next_link = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_link
    second = await browser.get(next_link.group(1).replace("&amp;", "&"))
    assert second.text.count('href="/messages/') == 1
    assert "status=succeeded" in next_link.group(1)  # the filter stays on the next page
    assert "First page" in second.text
    none = await browser.get("/messages?event_type=goal.created")
    assert "No message matches these filters" in none.text
    bad = await browser.get("/messages?event_type=Not-A-Type")
    assert bad.status_code == 400
    assert "query.event_type" in bad.text
    await browser.close()


async def test_dead_letters_are_listed_and_redriven(
    stack: Stack, token: Callable[..., str]
) -> None:
    name = tenant()
    event = build_event(
        GoalCreated,
        GoalEventData(goal=snapshot(str(uuid.uuid4()), at=stack.clock.now())),
        tenant_id=name,
        partition_key="poison",
        source="/tests",
    )
    poison = orjson.loads(event.to_json())
    poison["data"]["goal"]["participants"] = "not a list"  # schema-invalid data
    await produce(stack.bootstrap, f"{stack.prefix}goals", [orjson.dumps(poison)])
    browser = await signed_in(stack, token(name))
    listed = await eventually_page(
        browser, "/failures?service=sessions", lambda t: "Re-drive" in t, timeout=30
    )
    assert "invalid event data" in listed
    assert poison["id"] in listed
    action = re.search(r'action="(/failures/dead-letters/sessions/[^"]+/redrive)"', listed)
    assert action
    redriven = await browser.submit(
        await browser.get("/failures?service=sessions"), action.group(1)
    )
    assert "back on its source topic" in redriven.text
    done = await browser.get("/failures?service=sessions&status=redriven")
    assert poison["id"] in done.text
    assert "Re-drive" not in done.text  # a re-driven letter cannot be re-driven again
    # Nothing was fixed, so the record fails again and is dead-lettered anew: honest, not lost.
    await eventually_page(
        browser, "/failures?service=sessions", lambda t: t.count(poison["id"]) == 1
    )
    goals_tab = await browser.get("/failures?service=goals")
    assert "Nothing dead-lettered in goals" in goals_tab.text
    await browser.close()


async def test_one_tenant_never_sees_anothers_data(stack: Stack, token: Callable[..., str]) -> None:
    owner = await signed_in(stack, token(tenant()))
    registered = await owner.submit(
        await owner.get("/endpoints"), "/endpoints", url="http://127.0.0.1:9/private-hook"
    )
    endpoint_path = re.sub(r"/secret$", "", registered.url.path)
    sent = await owner.submit(await owner.get(endpoint_path), f"{endpoint_path}/test")
    message_path = sent.url.path

    stranger = await signed_in(stack, token(tenant()))
    listing = await stranger.get("/endpoints")
    assert "private-hook" not in listing.text
    assert "No webhook endpoints yet" in listing.text
    for path in (endpoint_path, message_path, f"{endpoint_path}/secret"):
        answer = await stranger.get(path)
        assert answer.status_code == 404, path
        assert "private-hook" not in answer.text
    messages = await stranger.get("/messages")
    assert message_path not in messages.text
    page = await stranger.get("/endpoints")
    form = stranger.form(page, "/endpoints").fields
    hijack = await stranger.http.post(f"{endpoint_path}/disable", data=form)
    assert hijack.status_code == 404
    still = await owner.get(endpoint_path)
    assert f'action="{endpoint_path}/disable"' in still.text  # still enabled
    await owner.close()
    await stranger.close()


async def test_retention_is_shown_per_service_and_changed_through_the_form(
    stack: Stack, token: Callable[..., str]
) -> None:
    name = tenant()
    admin = (*TENANT_SCOPES, TENANT_ADMIN_SCOPE)
    browser = await signed_in(stack, token(name, admin))
    page = await browser.get("/retention")
    assert page.status_code == 200, page.text
    shown = (("goals", "goal_history"), ("sessions", "checkins"), ("notifications", "attempts"))
    for service, kind in shown:
        assert f'id="retention-{service}"' in page.text
        assert f"<code>{kind}</code>" in page.text
    assert "30 days" in page.text  # messages' default, as a person reads it

    saved = await browser.submit(page, "/retention/notifications", named={"days.messages": "7"})
    assert "retention windows are saved" in saved.text
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token(name, admin)}"}) as api:
        windows = (await api.get(f"{stack.notifications}/v1/retention")).json()["windows"]
        messages = next(w for w in windows if w["kind"] == "messages")
        assert (messages["tenant_seconds"], messages["seconds"]) == (7 * 86_400, 7 * 86_400)
        # The form shows the tenant's own window; a blank field returns the kind to the default.
        assert 'name="days.messages" value="7"' in saved.text
        reset = await browser.submit(saved, "/retention/notifications", named={"days.messages": ""})
        assert "retention windows are saved" in reset.text
        windows = (await api.get(f"{stack.notifications}/v1/retention")).json()["windows"]
        messages = next(w for w in windows if w["kind"] == "messages")
        assert (messages["tenant_seconds"], messages["seconds"]) == (None, 30 * 86_400)

    not_a_number = await browser.submit(
        reset, "/retention/notifications", named={"days.messages": "soon"}
    )
    assert not_a_number.status_code == 400
    assert "not a number of days" in not_a_number.text
    below_minimum = await browser.submit(
        reset, "/retention/notifications", named={"days.messages": "0.01"}
    )
    assert below_minimum.status_code == 422  # the service's own floor, named by it
    assert "messages" in below_minimum.text
    await browser.close()

    # Without tenant:admin every section shows the service's refusal, not an error page.
    reader = await signed_in(stack, token(tenant()))
    refused = await reader.get("/retention")
    assert refused.status_code == 200
    assert refused.text.count("may not read this") == 3
    assert "/retention/notifications" not in refused.text
    await reader.close()
