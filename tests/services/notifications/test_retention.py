"""Retention in notifications, on SQLite and PostgreSQL: windows per tenant, purge in batches.

Messages (with their deliveries and attempts) older than the window go, in
batches; one still being delivered stays whatever its age; a tenant's own
window applies to that tenant only; the API refuses what would break a
guarantee; the counters and the oldest-row gauge say what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select

from services.notifications.app import create_app
from services.notifications.intake_rows import delivery_values
from services.notifications.models import Attempt, Delivery, GoalQuietHours, Message
from services.notifications.repository import SUCCEEDED
from shared.auth.tokens import TENANT_ADMIN_SCOPE, TENANT_SCOPES
from shared.clock import ManualClock
from shared.db.tables import processed_events
from tests.services.notifications import factories
from tests.services.notifications.conftest import HarnessFactory
from tests.support.apps import serving

DAY = timedelta(days=1)
ADMIN = (*TENANT_SCOPES, TENANT_ADMIN_SCOPE)


def message_row(tenant: str, message_id: str, created: datetime) -> dict[str, Any]:
    return {
        "id": message_id,
        "tenant_id": tenant,
        "event_type": "goal.created",
        "kind": "event",
        "goal_id": "g-1",
        "correlation_id": "c-1",
        "payload": b"{}",
        "routing": [],
        "event_time": created,
        "created_at": created,
    }


def purged_total(kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "followthrough_retention_purged_total", {"service": "notifications", "kind": kind}
    )
    return value or 0.0


async def test_messages_purge_per_tenant_window_in_batches_keeping_open_work(
    notifications_settings: Callable[..., Any],
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now)
    app = create_app(
        notifications_settings(retention_enabled=False, retention_batch_size=2), clock=clock
    )
    purger = app.state.retention
    database = app.state.runtime.database
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        admin = auth_headers("acme", ADMIN)
        refused = await http.put(
            "/v1/retention", headers=auth_headers("acme"), json={"windows": {"messages": 86400}}
        )
        assert refused.status_code == 403
        for bad, field in (
            ({"messages": 5}, "body.windows.messages"),  # below the floor
            ({"processed_events": 86400 * 30}, "body.windows.processed_events"),  # deployment
            ({"nonsense": 86400}, "body.windows.nonsense"),
        ):
            answer = await http.put("/v1/retention", headers=admin, json={"windows": bad})
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in answer.json()["errors"]] == [field]
        # globex keeps messages 2 days; acme keeps the default (30 days).
        globex_admin = auth_headers("globex", ADMIN)
        set_window = await http.put(
            "/v1/retention", headers=globex_admin, json={"windows": {"messages": 2 * 86400}}
        )
        assert set_window.status_code == 200, set_window.text
        shown = {w["kind"]: w for w in set_window.json()["windows"]}
        assert shown["messages"]["seconds"] == 2 * 86400
        assert shown["messages"]["tenant_seconds"] == 2 * 86400
        assert shown["messages"]["default_seconds"] == 30 * 86400
        assert shown["processed_events"]["per_tenant"] is False
        assert shown["processed_events"]["minimum_seconds"] >= 8 * 86400  # topic + a day
        acme_view = {
            w["kind"]: w for w in (await http.get("/v1/retention", headers=admin)).json()["windows"]
        }
        assert acme_view["messages"]["seconds"] == 30 * 86400

        async with database.transaction() as session:
            rows = [
                message_row("acme", "acme-old-1", now - 40 * DAY),
                message_row("acme", "acme-old-2", now - 35 * DAY),
                message_row("acme", "acme-old-3", now - 31 * DAY),
                message_row("acme", "acme-open", now - 45 * DAY),
                message_row("acme", "acme-recent", now - 3 * DAY),
                message_row("globex", "globex-old", now - 3 * DAY),
                message_row("globex", "globex-recent", now - DAY / 2),
            ]
            await session.execute(insert(Message), rows)
            done = delivery_values("acme", "acme-old-1", "webhook", now - 40 * DAY, "e-1")
            done["status"] = SUCCEEDED
            # Still owed: a retry far ahead (the dispatcher leaves it alone until then).
            pending = delivery_values(
                "acme", "acme-open", "webhook", now - 45 * DAY, "e-1", due=now + 10 * DAY
            )
            await session.execute(insert(Delivery), [done, pending])
            await session.execute(
                insert(Attempt),
                [{"delivery_id": done["id"], "number": 1, "started_at": now - 40 * DAY}],
            )
            await session.execute(
                insert(processed_events),
                [
                    {"consumer": "c", "event_id": "old", "processed_at": now - 20 * DAY},
                    {"consumer": "c", "event_id": "young", "processed_at": now - 5 * DAY},
                ],
            )
        before = purged_total("messages")

        purged = await purger.run_once()

        assert purged["messages"] == 4  # three of acme's (two batches of 2 and 1), globex-old
        assert purged_total("messages") - before == 4
        assert purged["processed_events"] == 1
        async with database.reader() as session:
            kept = set((await session.execute(select(Message.id))).scalars())
            deliveries = (
                await session.execute(select(func.count()).select_from(Delivery))
            ).scalar()
            attempts = (await session.execute(select(func.count()).select_from(Attempt))).scalar()
            dedupe = set((await session.execute(select(processed_events.c.event_id))).scalars())
        assert kept == {"acme-open", "acme-recent", "globex-recent"}
        assert deliveries == 1  # the pending one; the delivered one went with its message
        assert attempts == 0
        assert "young" in dedupe
        assert "old" not in dedupe
        oldest = REGISTRY.get_sample_value(
            "followthrough_retention_oldest_row_age_seconds",
            {"service": "notifications", "kind": "messages"},
        )
        # acme-open is 45 days old but still being delivered: the oldest that may go is 3 days.
        assert oldest == (3 * DAY).total_seconds()

        # Resetting globex to the default keeps its recent message for 30 days.
        reset = await http.put(
            "/v1/retention", headers=globex_admin, json={"windows": {"messages": None}}
        )
        assert {w["kind"]: w for w in reset.json()["windows"]}["messages"]["tenant_seconds"] is None
        await clock.advance(2 * DAY)
        assert (await purger.run_once())["messages"] == 0


async def test_only_one_replica_purges_and_another_takes_over_when_it_stops(
    notifications_settings: Callable[..., Any], db_backend: str
) -> None:
    if db_backend == "sqlite":
        pytest.skip("SQLite deployments are a single process, always the leader")
    first_settings = notifications_settings(retention_enabled=False)
    second_settings = notifications_settings(
        retention_enabled=False, database_url=first_settings.database_url
    )
    first, second = create_app(first_settings), create_app(second_settings)
    async with serving(first), serving(second):
        leading = await first.state.retention.run_once()
        standby = await second.state.retention.run_once()
        assert "messages" in leading
        assert standby == {}  # purged nothing: the other replica leads
        await first.state.retention.stop()  # releases the lock, as a dying process would
        assert "messages" in await second.state.retention.run_once()


async def test_a_closed_goals_quiet_hours_go_after_the_window_and_an_open_ones_stay(
    harness: HarnessFactory,
) -> None:
    """The per-goal projection is traffic too: every goal ever seen would otherwise stay."""
    async with harness(retention_enabled=False) as h:
        closed = factories.goal_snapshot(quiet=("22:00", "07:00"), version=3, status="completed")
        open_goal = factories.goal_snapshot(quiet=("21:00", "06:00"), version=2)
        completed = factories.goal_completed(closed)
        progressing = factories.milestone_completed(open_goal)
        await h.publish(completed, progressing)
        for event in (completed, progressing):
            await h.wait_message(event.id, lambda m: True)
        async with h.app.state.runtime.database.reader() as session:
            rows = {
                row.goal_id: row
                for row in (await session.execute(select(GoalQuietHours))).scalars()
            }
        assert rows[closed.goal_id].status == "completed"
        assert rows[closed.goal_id].updated_at == h.clock.now()
        assert rows[open_goal.goal_id].status == "active"

        await h.clock.advance(729 * DAY)
        assert (await h.app.state.retention.run_once())["closed_goals"] == 0
        await h.clock.advance(2 * DAY)
        assert (await h.app.state.retention.run_once())["closed_goals"] == 1

        async with h.app.state.runtime.database.reader() as session:
            kept = set((await session.execute(select(GoalQuietHours.goal_id))).scalars())
        assert kept == {open_goal.goal_id}
