"""Check-ins, acknowledgements and snoozes over real HTTP, with events read from the outbox
and the scheduler stepped by a manual clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.sessions.settings import SessionsSettings
from shared.clock import ManualClock
from shared.devstack.broker import TansuBroker
from shared.events.catalog.goals import GoalCompleted
from shared.events.catalog.sessions import (
    CheckinAcknowledged,
    CheckinCompleted,
    CheckinDueSoon,
    CheckinEscalated,
    CheckinMissed,
    CheckinSnoozed,
)
from tests.services.sessions.support import (
    goal_event,
    new_goal_id,
    publish,
    running_sessions,
    snapshot,
    weekly,
)

START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # Sunday
MONDAY_DUE = datetime(2026, 3, 2, 8, tzinfo=UTC)  # 09:00 in Berlin


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


async def test_check_ins_attach_by_the_window_rule_and_honour_idempotency_keys(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id = new_goal_id()
    policy = weekly(["MO"], reminder_lead_minutes=[60], grace_minutes=120)
    async with running_sessions(settings_for(SessionsSettings), clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [goal_event(snapshot(goal_id, policy=policy, at=START), at=START)],
        )
        await app.wait_projected(goal_id)

        async def check_in(at: datetime, **extra: Any) -> Any:
            body = {"goal_id": goal_id, "occurred_at": at.isoformat(), **extra}
            return await app.http.post("/v1/checkins", json=body, headers=app.headers)

        # Sunday noon: Monday's window opens 12 h before 09:00 local, so not yet.
        early = await check_in(START, notes="warming up")
        assert early.status_code == 201, early.text
        assert (early.json()["status"], early.json()["occurrence"]) == ("unscheduled", None)

        # Monday 08:30 local: on time, completes occurrence 1; the key makes a retry safe.
        await app.step_to(utc(3, 2, 7, 30))
        body = {"goal_id": goal_id, "occurred_at": utc(3, 2, 7, 30).isoformat(), "rating": 4}
        keyed = {**app.headers, "Idempotency-Key": "checkin-w1"}
        first = await app.http.post("/v1/checkins", json=body, headers=keyed)
        again = await app.http.post("/v1/checkins", json=body, headers=keyed)
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert first.json()["status"] == "on_time"
        assert first.json()["occurrence"]["sequence"] == 1
        assert first.json()["occurrence"]["status"] == "completed"
        reused = await app.http.post("/v1/checkins", json={**body, "rating": 5}, headers=keyed)
        assert reused.status_code == 422
        assert reused.headers["content-type"].startswith("application/problem+json")

        # A second check-in the same morning has no open occurrence left to attach to.
        await app.step_to(utc(3, 2, 7, 45))
        extra = await check_in(utc(3, 2, 7, 45))
        assert extra.json()["status"] == "unscheduled"

        # Week 2 is missed at 11:00 local; a check-in after that is recorded as late.
        await app.step_to(utc(3, 9, 10, 30))
        late = await check_in(utc(3, 9, 10, 30), blockers=["travel"], source="mobile-app")
        assert late.status_code == 201
        assert late.json()["status"] == "late"
        assert late.json()["late"] is True
        assert late.json()["occurrence"]["sequence"] == 2
        assert late.json()["occurrence"]["status"] == "missed"
        # Only one late check-in per missed occurrence.
        second_late = await check_in(utc(3, 9, 10, 32))
        assert second_late.json()["status"] == "unscheduled"

        completed = [e for e in await app.outbox_events() if isinstance(e, CheckinCompleted)]
        assert [(e.data.checkin.late, e.data.occurrence is not None) for e in completed] == [
            (False, False),
            (False, True),
            (False, False),
            (True, True),
            (False, False),
        ]
        assert completed[1].data.checkin.rating == 4
        assert completed[3].data.checkin.blockers == ["travel"]

        # Input is validated and names the field; time cannot run ahead of the clock.
        future = await check_in(utc(3, 9, 11))
        assert future.status_code == 422
        assert future.json()["errors"] == [
            {"field": "body.occurred_at", "message": "lies in the future"}
        ]
        rating = await check_in(utc(3, 9, 10, 33), rating=6)
        assert rating.status_code == 422
        assert rating.json()["errors"][0]["field"] == "body.rating"
        unknown_field = await check_in(utc(3, 9, 10, 33), mood="great")
        assert unknown_field.status_code == 422

        # Tenancy and credentials.
        other_tenant = await app.http.post(
            "/v1/checkins", json={"goal_id": goal_id}, headers=auth_headers("globex")
        )
        assert other_tenant.status_code == 404
        assert other_tenant.headers["content-type"].startswith("application/problem+json")
        missing = await app.http.post(
            "/v1/checkins", json={"goal_id": "no-such-goal"}, headers=app.headers
        )
        assert missing.status_code == 404
        anonymous = await app.http.post("/v1/checkins", json={"goal_id": goal_id})
        assert anonymous.status_code == 401
        read_only = await app.http.post(
            "/v1/checkins",
            json={"goal_id": goal_id},
            headers=auth_headers("acme", ("sessions:read",)),
        )
        assert read_only.status_code == 403
        foreign_read = await app.http.get(
            f"/v1/goals/{goal_id}/checkins", headers=auth_headers("globex")
        )
        assert foreign_read.status_code == 404

        # History, newest first, paged.
        page = (
            await app.http.get(
                f"/v1/goals/{goal_id}/checkins", params={"limit": 3}, headers=app.headers
            )
        ).json()
        assert [c["status"] for c in page["checkins"]] == ["unscheduled", "late", "unscheduled"]
        assert page["adherence"]["completed_on_time"] == 1
        assert page["adherence"]["missed"] == 1
        assert page["adherence"]["on_time_rate"] == 0.5
        assert page["adherence"]["late_checkins"] == 1
        assert page["risk"]["factors"]["consecutive_misses"] > 0
        rest = (
            await app.http.get(
                f"/v1/goals/{goal_id}/checkins",
                params={"limit": 3, "before": page["next_before"]},
                headers=app.headers,
            )
        ).json()
        assert [c["status"] for c in rest["checkins"]] == ["on_time", "unscheduled"]
        assert rest["next_before"] is None

        # A completed goal takes no more check-ins.
        done = snapshot(goal_id, version=2, status="completed", policy=policy, at=START)
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [goal_event(done, cls=GoalCompleted, at=utc(3, 9, 10, 50))],
        )
        await app.wait_projected(goal_id, 2)
        closed = await check_in(utc(3, 9, 10, 34))
        assert closed.status_code == 409
        assert closed.json()["type"].endswith("/goal-closed")


async def test_snooze_moves_the_miss_and_acknowledging_cancels_the_escalation(
    settings_for: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
    broker: TansuBroker,
    topic_prefix: str,
) -> None:
    clock = ManualClock(START)
    goal_id, dst_goal = new_goal_id(), new_goal_id()
    policy = weekly(
        ["MO"],
        reminder_lead_minutes=[60],
        grace_minutes=60,
        quiet_hours={"start": "22:00", "end": "08:30"},
        escalation=[{"after_misses": 1, "notify_roles": ["mentor", "sponsor"]}],
    )
    # Daily at 02:30 from the night Berlin skips 02:00-03:00.
    dst_policy = {
        "cadence": {"kind": "daily"},
        "time_of_day": "02:30",
        "timezone": "Europe/Berlin",
        "starts_on": "2026-03-29",
        "reminder_lead_minutes": [60],
    }
    settings = settings_for(SessionsSettings, snooze_max_minutes=120)
    async with running_sessions(settings, clock, auth_headers()) as app:
        await publish(
            broker.bootstrap_servers,
            f"{topic_prefix}goals",
            [
                goal_event(snapshot(goal_id, policy=policy, at=START), at=START),
                goal_event(snapshot(dst_goal, policy=dst_policy, at=START), at=START),
            ],
        )
        await app.wait_projected(goal_id)
        await app.wait_projected(dst_goal)
        url = f"/v1/goals/{goal_id}"

        nothing = await app.http.post(f"{url}/acknowledge", json={}, headers=app.headers)
        assert nothing.status_code == 409
        assert nothing.json()["type"].endswith("/nothing-missed")

        too_long = await app.http.post(f"{url}/snooze", json={"minutes": 121}, headers=app.headers)
        assert too_long.status_code == 422
        assert too_long.json()["errors"][0]["field"] == "body.minutes"
        snoozed = await app.http.post(f"{url}/snooze", json={"minutes": 30}, headers=app.headers)
        assert snoozed.status_code == 200, snoozed.text
        new_deadline = MONDAY_DUE + timedelta(minutes=60 + 30)
        assert snoozed.json()["occurrence"]["deadline_at"] == new_deadline.isoformat().replace(
            "+00:00", "Z"
        )
        twice = await app.http.post(f"{url}/snooze", json={"minutes": 10}, headers=app.headers)
        assert twice.status_code == 409
        assert twice.json()["type"].endswith("/already-snoozed")

        # The old deadline passes quietly; the miss comes at the snoozed one.
        await app.step_to(utc(3, 2, 7, 30))
        await app.step_to(MONDAY_DUE + timedelta(minutes=61))
        assert not [e for e in await app.outbox_events() if isinstance(e, CheckinMissed)]
        await app.step_to(new_deadline)
        (missed,) = [e for e in await app.outbox_events() if isinstance(e, CheckinMissed)]
        assert missed.time == new_deadline
        assert missed.data.occurrence.deadline_at == new_deadline

        # An escalation is pending for an hour; the mentor acknowledges first.
        acknowledged = await app.http.post(
            f"{url}/acknowledge", json={"role": "mentor"}, headers=app.headers
        )
        assert acknowledged.status_code == 200, acknowledged.text
        assert acknowledged.json()["cancelled_escalations"] == 1
        assert acknowledged.json()["acknowledged_by"] == "mentor"
        again = await app.http.post(f"{url}/acknowledge", json={}, headers=app.headers)
        assert again.status_code == 409
        assert again.json()["type"].endswith("/already-acknowledged")
        await app.step_to(new_deadline + timedelta(hours=2))
        events = [e for e in await app.outbox_events() if e.partitionkey == goal_id]
        assert not [e for e in events if isinstance(e, CheckinEscalated)]
        assert [type(e) for e in events] == [
            CheckinSnoozed,
            CheckinDueSoon,
            CheckinMissed,
            CheckinAcknowledged,
        ]
        # The 08:00 reminder fell in quiet hours (until 08:30): it waited for their end.
        reminder = events[1]
        assert isinstance(reminder, CheckinDueSoon)
        assert reminder.time == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
        assert reminder.data.reasoning.quiet_hours_delay is not None
        assert "quiet hours 22:00-08:30" in reminder.data.reasoning.quiet_hours_delay
        assert reminder.data.reasoning.scheduled_for == reminder.time

        # The next week's miss escalates at once to mentor and sponsor (ladder level 1).
        await app.step_to(utc(3, 9, 10))
        (escalated,) = [
            e
            for e in await app.outbox_events()
            if isinstance(e, CheckinEscalated) and e.partitionkey == goal_id
        ]
        assert escalated.time == utc(3, 9, 10)  # deadline 09:00 UTC + 60 min delay
        assert escalated.data.notify_roles == ["mentor", "sponsor"]
        assert {p.email for p in escalated.data.recipients} == {
            "grace@example.com",
            "linus@example.com",
        }

        # DST: 02:30 does not exist in Berlin on 29 March; the decision travels with it.
        await app.step_to(utc(3, 29, 0, 30))
        (gap,) = [
            e
            for e in await app.outbox_events()
            if isinstance(e, CheckinDueSoon)
            and e.partitionkey == dst_goal
            and e.data.occurrence.due_at == utc(3, 29, 1, 30)
        ]
        assert gap.data.occurrence.local_due == "2026-03-29T03:30:00"
        assert gap.data.reasoning.dst_decision is not None
        assert "moved forward" in gap.data.reasoning.dst_decision
