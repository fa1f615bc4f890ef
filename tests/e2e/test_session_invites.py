"""Session invitations through real processes: a coaching session scheduled, rescheduled and
cancelled on the sessions process gives each participant three emails in a real SMTP server,
whose calendar parts parse, share one UID and carry SEQUENCE 0, 1, 2 with METHOD REQUEST,
REQUEST, CANCEL."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar

from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import SmtpSink
from tests.support.services import ServiceProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

ADA = {"role": "mentee", "name": "Ada", "email": "ada@example.com", "timezone": "America/Santiago"}
GRACE = {"role": "coach", "name": "Grace", "email": "grace@example.com"}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def services(
    broker: TansuBroker, keys_file: Path, topic_prefix: str, tmp_path: Path, sink: SmtpSink
) -> Iterator[dict[str, ServiceProcess]]:
    env = {
        "FOLLOWTHROUGH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "FOLLOWTHROUGH_KAFKA_TOPIC_PREFIX": topic_prefix,
        "FOLLOWTHROUGH_AUTH_KEYS_FILE": str(keys_file),
        "FOLLOWTHROUGH_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_DATA_DIR": str(tmp_path / "data"),
        "FOLLOWTHROUGH_ENVIRONMENT": "test",
        "FOLLOWTHROUGH_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "FOLLOWTHROUGH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "FOLLOWTHROUGH_OUTBOX_POLL_SECONDS": "0.5",
        "NOTIFICATIONS_SMTP_PORT": str(sink.port),
    }
    started: dict[str, ServiceProcess] = {}
    try:
        for name in ("goals", "sessions", "notifications"):
            process = ServiceProcess(name, env, tmp_path / f"{name}.log")
            started[name] = process
            process.start()
        yield started
    finally:
        for process in started.values():
            process.stop()


def calendar_part(message: EmailMessage) -> tuple[str, Calendar]:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_content_charset() == "utf-8"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return str(part.get_param("method")), Calendar.from_ical(payload)


async def test_scheduled_rescheduled_cancelled_session_sends_three_invites(
    services: dict[str, ServiceProcess],
    auth_headers: Callable[..., dict[str, str]],
    sink: SmtpSink,
) -> None:
    headers = auth_headers("acme")
    goals, sessions = services["goals"], services["sessions"]
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    moved = starts + timedelta(days=1, hours=2)
    async with httpx.AsyncClient(timeout=10) as http:
        goal = await http.post(
            f"{goals.url}/v1/goals",
            headers=headers,
            json={"title": "Learn Spanish", "participants": [ADA, GRACE]},
        )
        assert goal.status_code == 201, goal.text
        goal_id = goal.json()["id"]

        async def schedule() -> httpx.Response | None:
            response = await http.post(
                f"{sessions.url}/v1/sessions",
                headers=headers,
                json={
                    "goal_id": goal_id,
                    "starts_at": starts.isoformat(),
                    "duration_minutes": 45,
                    "link": "https://meet.example.com/ada-grace",
                },
            )
            return None if response.status_code == 404 else response  # not projected yet

        created = None
        async with asyncio.timeout(30):
            while created is None:
                created = await schedule()
                if created is None:
                    await asyncio.sleep(0.1)
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        assert created.json()["sequence"] == 0

        rescheduled = await http.post(
            f"{sessions.url}/v1/sessions/{session_id}/reschedule",
            headers=headers,
            json={"starts_at": moved.isoformat()},
        )
        assert rescheduled.status_code == 200, rescheduled.text
        assert rescheduled.json()["sequence"] == 1
        cancelled = await http.post(
            f"{sessions.url}/v1/sessions/{session_id}/cancel", headers=headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["sequence"] == 2

    await eventually(lambda: len(sink.messages) >= 6, timeout=60, what="six emails")
    assert len(sink.messages) == 6  # one email per event and person

    for person in (ADA, GRACE):
        received = [
            email.message_from_bytes(m["content"], policy=email.policy.default)
            for m in sink.messages
            if m["rcpt_tos"] == [person["email"]]
        ]
        assert len(received) == 3, person
        parts: list[tuple[int, str, Any, str]] = []
        for message in received:
            assert isinstance(message, EmailMessage)
            method, calendar = calendar_part(message)
            assert calendar["method"] == method
            (event,) = calendar.walk("VEVENT")
            assert calendar.walk("VTIMEZONE"), "the TZID needs its VTIMEZONE"
            sequence = event.decoded("sequence")
            parts.append((int(sequence), method, event, str(message["subject"])))
        parts.sort(key=lambda part: part[0])
        assert [(seq, method) for seq, method, _, _ in parts] == [
            (0, "REQUEST"),
            (1, "REQUEST"),
            (2, "CANCEL"),
        ]
        assert {str(event["uid"]) for _, _, event, _ in parts} == {
            f"session-{session_id}@followthrough"
        }
        first, second, third = (event for _, _, event, _ in parts)
        assert first["dtstart"].params["TZID"] == "America/Santiago"
        assert first.decoded("dtstart").astimezone(UTC) == starts
        assert second.decoded("dtstart").astimezone(UTC) == moved
        assert second.decoded("dtend").astimezone(UTC) == moved + timedelta(minutes=45)
        assert str(third["status"]) == "CANCELLED"
        assert str(first["status"]) == str(second["status"]) == "CONFIRMED"
        assert str(first["organizer"]) == "mailto:grace@example.com"
        attendees = first.get("attendee")
        attendees = attendees if isinstance(attendees, list) else [attendees]
        assert [str(a) for a in attendees] == ["mailto:ada@example.com"]
        assert attendees[0].params["X-FOLLOWTHROUGH-ROLE"] == "mentee"
        assert "Cancelled" in parts[2][3]
