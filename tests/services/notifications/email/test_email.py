"""Email end to end: events from the real broker, emails into a real aiosmtpd server."""

from __future__ import annotations

import asyncio
from email import message_from_bytes
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlparse

from shared.auth.links import verify_link
from shared.events.catalog.sessions import CheckinEscalated, CheckinEscalatedData
from shared.events.registry import build_event
from tests.services.notifications import factories
from tests.services.notifications.conftest import Harness, HarnessFactory

LINK_SECRET = "development-link-secret-change-me"


async def mails(h: Harness, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout):
        # The sink is aiosmtpd in its own thread: there is nothing in this loop to await.
        while len(h.sink.messages) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return list(h.sink.messages)


def parsed(mail: dict[str, Any]) -> Message:
    return message_from_bytes(mail["content"])


def parts(message: Message) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


def recipients(h: Harness) -> list[str]:
    return sorted(r for mail in h.sink.messages for r in mail["rcpt_tos"])


async def settle(h: Harness, event_id: str) -> dict[str, Any]:
    """The message once none of its email deliveries is pending any more."""
    return await h.wait_message(
        event_id,
        lambda m: all(d["status"] != "pending" for d in m["deliveries"]) and bool(m["deliveries"]),
    )


async def test_missed_checkin_email_to_the_mentee(harness: HarnessFactory) -> None:
    async with harness() as h:
        goal = factories.goal_ref()
        event = factories.checkin_missed(goal)
        await h.publish(event)
        (mail,) = await mails(h, 1)
        message = await settle(h, event.id)
    assert mail["rcpt_tos"] == ["ada@example.com"]
    email = parsed(mail)
    assert email.get_content_type() == "multipart/alternative"
    bodies = parts(email)
    assert set(bodies) == {"text/plain", "text/html"}
    assert email["Subject"] == "Missed check-in: Run a half marathon"
    assert email["Message-ID"].startswith("<")
    assert email["Message-ID"].endswith(">")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = email["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{h.app.state.runtime.settings.public_base_url}/v1/unsubscribe")
    assert email["X-Followthrough-Event-Id"] == event.id
    # The miss carries the three signed action links agreed with the sessions service.
    occurrence_id = event.data.occurrence.occurrence_id  # type: ignore[attr-defined]
    for action in ("checkin", "acknowledge", "snooze"):
        link = next(
            line.split()[-1]
            for line in bodies["text/plain"].splitlines()
            if f"/links/{action}?" in line
        )
        assert link.startswith(f"http://127.0.0.1:8002/v1/links/{action}?token=")
        claims = verify_link(LINK_SECRET, parse_qs(urlparse(link).query)["token"][0], action=action)
        assert claims["sub"] == goal.goal_id
        assert claims["occ"] == occurrence_id
        assert claims["role"] == "mentee"
        assert claims["tenant"] == "acme"
        assert f"/links/{action}?" in bodies["text/html"]
    (delivery,) = message["deliveries"]
    assert delivery["status"] == "succeeded"
    assert delivery["role"] == "mentee"


async def test_recipients_follow_roles(harness: HarnessFactory) -> None:
    coach = factories.Participant(role="coach", name="Cy", email="cy@example.com")
    goal = factories.goal_ref(
        participants=[factories.MENTEE, factories.MENTOR, coach, factories.SPONSOR]
    )
    now = factories.datetime.now(factories.UTC)
    escalated = build_event(
        CheckinEscalated,
        CheckinEscalatedData(
            goal=goal,
            occurrence=factories.occurrence(now),
            consecutive_misses=3,
            level=2,
            notify_roles=["sponsor"],
            recipients=[factories.SPONSOR],
            reasoning=factories.reasoning(now),
            risk=factories.risk(85),
        ),
        tenant_id="acme",
        partition_key=goal.goal_id,
        source="/followthrough/sessions",
    )
    snapshot = factories.goal_snapshot()
    cases: list[tuple[Any, list[str]]] = [
        (escalated, ["cy@example.com", "grace@example.com", "sam@example.com"]),
        (factories.milestone_completed(snapshot), ["grace@example.com"]),
        (factories.goal_completed(), ["ada@example.com", "grace@example.com", "sam@example.com"]),
        (factories.checkin_completed(), []),
    ]
    async with harness() as h:
        for event, expected in cases:
            h.sink.messages.clear()
            await h.publish(event)
            if expected:
                await mails(h, len(expected))
                await settle(h, event.id)
            else:
                await h.wait_message(event.id, lambda m: True)
            assert recipients(h) == expected, event.type
        routing = (await h.http.get(f"/v1/events/{escalated.id}/routing", headers=h.headers)).json()
    reasons = {d["target"]: d["reason"] for d in routing["decisions"] if d["channel"] == "email"}
    assert reasons == {
        "ada@example.com": "rule",
        "grace@example.com": "matched",
        "cy@example.com": "matched",
        "sam@example.com": "matched",
    }


async def test_one_click_unsubscribe_stops_the_next_one(harness: HarnessFactory) -> None:
    async with harness() as h:
        goal = factories.goal_ref()
        await h.publish(factories.checkin_missed(goal))
        (mail,) = await mails(h, 1)
        link = parsed(mail)["List-Unsubscribe"].strip("<>")
        path = link.removeprefix(h.app.state.runtime.settings.public_base_url)
        page = await h.http.get(path)
        assert page.status_code == 200
        assert "checkin.missed" in page.text
        assert "<form" in page.text
        one_click = await h.http.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert one_click.status_code == 200, one_click.text
        assert one_click.json() == {"unsubscribed": True, "event_type": "checkin.missed"}
        tampered = await h.http.post(path[:-3] + "abc")
        assert tampered.status_code == 400
        assert tampered.headers["content-type"].startswith("application/problem+json")
        after = factories.checkin_missed(goal)
        due_soon = factories.checkin_due_soon(goal)
        await h.publish(after, due_soon)
        await mails(h, 2)
        await settle(h, due_soon.id)
        routing = (await h.http.get(f"/v1/events/{after.id}/routing", headers=h.headers)).json()
        preference = (await h.http.get("/v1/preferences/ada@example.com", headers=h.headers)).json()
    subjects = [parsed(m)["Subject"] for m in h.sink.messages]
    assert len(subjects) == 2
    assert subjects[1].startswith("Check-in due")
    # The reminder's "add to calendar" link: signed for Ada and this goal, to sessions.
    text = parts(parsed(h.sink.messages[1]))["text/plain"]
    (calendar_link,) = [w for w in text.split() if "/v1/links/calendar?token=" in w]
    token = parse_qs(urlparse(calendar_link).query)["token"][0]
    claims = verify_link(LINK_SECRET, token, action="calendar-subscribe")
    assert claims["sub"] == goal.goal_id
    assert claims["email"] == "ada@example.com"
    ada = next(d for d in routing["decisions"] if d["target"] == "ada@example.com")
    assert ada == {**ada, "matched": False, "reason": "unsubscribed"}
    assert preference["unsubscribed"] == ["checkin.missed"]


async def test_quiet_hours_delay_and_never_drop(harness: HarnessFactory) -> None:
    async with harness() as h:
        local = h.clock.now().astimezone(factories.ZoneInfo("Europe/Berlin"))
        start = (local - factories.timedelta(hours=1)).strftime("%H:%M")
        end = (local + factories.timedelta(hours=2)).strftime("%H:%M")
        put = await h.http.put(
            "/v1/preferences/ada@example.com",
            headers=h.headers,
            json={"quiet_start": start, "quiet_end": end, "timezone": "Europe/Berlin"},
        )
        assert put.status_code == 200, put.text
        event = factories.checkin_missed()
        await h.publish(event)
        message = await h.wait_message(event.id, lambda m: bool(m["deliveries"]))
        routing = (await h.http.get(f"/v1/events/{event.id}/routing", headers=h.headers)).json()
        (delivery,) = message["deliveries"]
        assert h.sink.messages == []
        release = factories.datetime.fromisoformat(delivery["next_attempt_at"])
        assert release.astimezone(factories.ZoneInfo("Europe/Berlin")).strftime("%H:%M") == end
        await h.clock.set(release + factories.timedelta(seconds=1))
        h.app.state.dispatcher.wake.set()
        (mail,) = await mails(h, 1)
    ada = next(d for d in routing["decisions"] if d["target"] == "ada@example.com")
    assert ada["reason"] == "quiet_hours"
    assert ada["matched"] is True
    assert mail["rcpt_tos"] == ["ada@example.com"]


async def test_goal_policy_quiet_hours_apply_to_session_events(harness: HarnessFactory) -> None:
    async with harness() as h:
        local = h.clock.now().astimezone(factories.ZoneInfo("Europe/Berlin"))
        quiet = (
            (local - factories.timedelta(minutes=30)).strftime("%H:%M"),
            (local + factories.timedelta(hours=1)).strftime("%H:%M"),
        )
        snapshot = factories.goal_snapshot(quiet=quiet)
        milestone = factories.milestone_completed(snapshot)
        await h.publish(milestone)
        await h.wait_message(milestone.id, lambda m: True)
        missed = factories.checkin_missed(factories.goal_ref(snapshot.goal_id))
        await h.publish(missed)
        message = await h.wait_message(missed.id, lambda m: bool(m["deliveries"]))
    (delivery,) = message["deliveries"]
    assert delivery["status"] == "pending"
    assert factories.datetime.fromisoformat(delivery["next_attempt_at"]) > h.clock.now()


async def test_tenant_rules_and_sandboxed_templates(harness: HarnessFactory) -> None:
    async with harness() as h:
        rule = await h.http.put(
            "/v1/email-rules/checkin.missed", headers=h.headers, json={"roles": ["mentor"]}
        )
        assert rule.status_code == 200, rule.text
        bad = await h.http.put(
            "/v1/templates/checkin.missed",
            headers=h.headers,
            json={"subject": "{% if %}", "text": "x", "html": "x"},
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "body.subject"
        template = await h.http.put(
            "/v1/templates/checkin.missed",
            headers=h.headers,
            json={
                "subject": "Heads up about {{ goal.title }}",
                "text": "{{ recipient.name }}: {{ data.consecutive_misses }} miss",
                "html": "<p>{{ recipient.name }} <b>{{ '<script>' }}</b></p>",
            },
        )
        assert template.status_code == 200, template.text
        await h.publish(factories.checkin_missed())
        (mail,) = await mails(h, 1)
        escape = await h.http.put(
            "/v1/templates/checkin.missed",
            headers=h.headers,
            json={
                "subject": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                "text": "t",
                "html": "h",
            },
        )
        assert escape.status_code == 200
        await h.publish(factories.checkin_missed())
        second = (await mails(h, 2))[1]
    email = parsed(mail)
    assert mail["rcpt_tos"] == ["grace@example.com"]
    assert email["Subject"] == "Heads up about Run a half marathon"
    assert parts(email)["text/plain"].strip() == "Grace: 1 miss"
    assert "&lt;script&gt;" in parts(email)["text/html"]
    # The sandbox refused the escape; the built-in template was used instead.
    assert parsed(second)["Subject"] == "Missed check-in: Run a half marathon"


async def test_tenant_rule_for_a_type_without_defaults(harness: HarnessFactory) -> None:
    async with harness() as h:
        rule = await h.http.put(
            "/v1/email-rules/checkin.completed", headers=h.headers, json={"roles": ["mentor"]}
        )
        assert rule.status_code == 200, rule.text
        rules = (await h.http.get("/v1/email-rules", headers=h.headers)).json()
        event = factories.checkin_completed()  # no occurrence: a check-in outside the schedule
        await h.publish(event)
        (mail,) = await mails(h, 1)
        await settle(h, event.id)
    assert {"event_type": "checkin.completed", "roles": ["mentor"], "source": "tenant"} in rules
    assert {"event_type": "checkin.missed", "roles": ["mentee"], "source": "default"} in rules
    assert mail["rcpt_tos"] == ["grace@example.com"]
    assert parsed(mail)["Subject"] == "checkin.completed: Run a half marathon"
