"""The weekly digest: one email per mentor at their slot, mentees ranked by risk; an empty
week sends nothing."""

from __future__ import annotations

import re
from datetime import timedelta

from services.notifications.settings import WEEKDAY_NAMES
from tests.services.notifications import factories
from tests.services.notifications.conftest import HarnessFactory
from tests.services.notifications.email.test_email import mails, parsed, parts


async def test_digest_week_produces_one_email_per_mentor(harness: HarnessFactory) -> None:
    bob = factories.Participant(role="mentee", name="Bob", email="bob@example.com")
    ada_goal = factories.goal_ref(title="Run a half marathon")
    hal = factories.Participant(role="mentor", name="Hal", email="hal@example.com")
    bob_goal = factories.goal_ref(title="Learn Spanish", participants=[bob, factories.MENTOR, hal])
    async with harness(digest_poll_seconds=3600) as h:
        slot = h.clock.now() + timedelta(days=1)
        for mentor in ("grace@example.com", "hal@example.com"):
            preference = await h.http.put(
                f"/v1/preferences/{mentor}",
                headers=h.headers,
                json={
                    "delivery": "digest",
                    "digest_day": WEEKDAY_NAMES[slot.weekday()],
                    "digest_hour": slot.hour,
                    "timezone": "UTC",
                },
            )
            assert preference.status_code == 200, preference.text
        week = [
            factories.checkin_completed(bob_goal, score=20),
            factories.streak_updated(bob_goal, current=4),
            factories.checkin_missed(ada_goal, score=80),
            factories.checkin_completed(ada_goal, score=70),
            factories.checkin_missed(ada_goal, score=85),
        ]
        await h.publish(*week)
        for event in week:
            await h.wait_message(event.id, lambda m: True)
        await mails(h, 2)  # Ada's own two missed-check-in emails; Grace gets nothing yet
        assert h.app.state.digest.poke is not None
        assert await h.app.state.digest.run_once() == 0
        await h.clock.set(slot.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=1))
        assert await h.app.state.digest.run_once() == 2
        assert await h.app.state.digest.run_once() == 0  # the same week is never sent twice
        digests = {m["rcpt_tos"][0]: m for m in (await mails(h, 4))[2:]}
        await h.clock.advance(timedelta(days=7))
        assert await h.app.state.digest.run_once() == 0  # an empty week sends nothing
    assert len(h.sink.messages) == 4  # two to Ada as they happened, one digest per mentor
    assert sorted(digests) == ["grace@example.com", "hal@example.com"]
    assert [m["rcpt_tos"] for m in h.sink.messages[:2]] == [["ada@example.com"]] * 2
    hal_rows = re.findall(
        r'<tr class="mentee"><td>([^<]+)</td>',
        parts(parsed(digests["hal@example.com"]))["text/html"],
    )
    assert hal_rows == ["Bob"]
    email = parsed(digests["grace@example.com"])
    assert email["List-Unsubscribe"]
    assert email["Subject"].startswith("Your week: 2 goals")
    html = parts(email)["text/html"]
    rows = re.findall(r'<tr class="mentee"><td>([^<]+)</td>', html)
    assert rows == ["Ada", "Bob"]  # riskiest first
    text = parts(email)["text/plain"]
    assert 'Ada: "Run a half marathon" (risk 85/100)' in text
    assert "check-ins 1, misses 2, milestones 0" in text
    assert "check-ins 1, misses 0, streak 4, milestones 0" in text
