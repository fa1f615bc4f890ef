"""Intake: every domain event becomes a stored message, its routing and its deliveries, at once.

A batch is handled in one transaction with a fixed number of queries
(existing ids, the tenants' endpoints and email rules, the recipients'
preferences, unsubscribes and quiet hours), whatever its size, as one
synchronous function of Core statements run with ``Database.run_core`` (the
repositories' ``MessageIntake`` and ``EmailLookups``). Only after the
transaction commits does the consumer runner commit the offset; a
redelivered event finds its message already stored and changes nothing.

Routing is decided here and stored with the message, so the routing API
explains exactly what happened at the time, not what would happen today.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from services.notifications.delivery.lanes import EMAIL_LANE
from services.notifications.email.repository import EmailLookups
from services.notifications.email.rules import (
    DIGEST_TYPES,
    QuietHours,
    Recipient,
    candidates,
    goal_of,
    roles_for,
    wants,
)
from services.notifications.intake_rows import (
    HandedOver,
    Handoff,
    Rows,
    delivery_values,
    digest_values,
)
from services.notifications.models import (
    Delivery,
    DigestEntry,
    Endpoint,
    ErasedMessage,
    GoalQuietHours,
    Message,
    Preference,
)
from services.notifications.privacy.suppression import (
    Suppressed,
    SuppressionCheck,
    erased_message_rows,
)
from services.notifications.repository import MessageIntake
from services.notifications.routing import RoutingCache
from services.notifications.webhooks.matching import payload_matches, type_matches
from shared import tracing
from shared.clock import Clock
from shared.db.database import Database
from shared.events.catalog.goals import GoalSnapshot
from shared.events.envelope import CloudEvent
from shared.kafka.consumed import ConsumedEvent, event_scope
from shared.logs import get_logger

log = get_logger(__name__)


def _routing_span(event: CloudEvent, started: int, webhooks: int, emails: int) -> None:
    """The routing decision as a span of the event's handling (it took from ``started``)."""
    from shared.tracing.spans import span

    with span(
        f"route {event.type}",
        start_time=started,
        attributes={
            "cloudevents.event_id": event.id,
            "cloudevents.event_type": event.type,
            "followthrough.routing.webhooks": webhooks,
            "followthrough.routing.emails": emails,
        },
    ):
        pass


def goal_id_of(event: CloudEvent) -> str | None:
    goal = goal_of(event)
    return goal.goal_id if goal is not None else None


@dataclass
class BatchContext:
    """What routing a batch needs, loaded with one query per kind."""

    endpoints: dict[str, list[Endpoint]]
    rules: dict[str, dict[str, list[str]]]
    preferences: dict[tuple[str, str], Preference]
    unsubscribed: set[tuple[str, str, str]]
    quiet_hours: dict[tuple[str, str], GoalQuietHours]
    quiet_updates: dict[tuple[str, str], GoalSnapshot] = field(default_factory=dict)
    suppressed: Suppressed = field(default_factory=Suppressed)
    """Erased people among the batch's: never emailed, and scrubbed from what is stored."""
    erased: list[tuple[str, str]] = field(default_factory=list)


class IntakeHandler:
    def __init__(
        self,
        database: Database,
        wake_dispatcher: asyncio.Event,
        clock: Clock,
        *,
        first_webhook_delay: float = 0.0,
        first_email_delay: float = 0.0,
        handoff: Handoff | None = None,
        suppression: SuppressionCheck | None = None,
    ) -> None:
        self._db = database
        self._suppression = suppression
        self._wake = wake_dispatcher
        self._handoff = handoff
        self._clock = clock
        self._routing = RoutingCache()
        self._webhook_delay = timedelta(seconds=first_webhook_delay)
        self._email_delay = timedelta(seconds=first_email_delay)

    async def __call__(self, batch: Sequence[ConsumedEvent]) -> None:
        rows = Rows()
        try:
            created = await self._write(batch, rows)
        except BaseException:
            for handed in rows.handed:
                assert self._handoff is not None
                self._handoff.unreserve(handed.lane)
            raise
        if rows.handed:
            assert self._handoff is not None
            messages = {row["id"]: row for row in rows.messages}
            self._handoff.hand_over(
                [h.claimed(messages[h.delivery["message_id"]]) for h in rows.handed]
            )
        if self._handoff is None:
            if created:
                self._wake.set()
        elif rows.refused:
            self._handoff.written(rows.refused)

    async def _write(self, batch: Sequence[ConsumedEvent], rows: Rows) -> int:
        return await self._db.run_core(
            functools.partial(self._write_batch, batch, rows), write=True
        )

    def _write_batch(
        self, batch: Sequence[ConsumedEvent], rows: Rows, connection: Connection
    ) -> int:
        """The batch's transaction, as one synchronous function; the deliveries it created."""
        store = MessageIntake(connection)
        emails = EmailLookups(connection)
        existing = store.existing_message_ids([item.event.id for item in batch])
        fresh: list[ConsumedEvent] = []
        seen: set[str] = set()
        for item in batch:
            if item.event.id in existing or item.event.id in seen:
                with event_scope(item.event):
                    log.info("notifications.event.duplicate", event_type=item.event.type)
                continue
            seen.add(item.event.id)
            fresh.append(item)
        if not fresh:
            return 0
        context = self._load(store, emails, [item.event for item in fresh])
        if self._suppression is not None:
            context.suppressed = self._suppression.load(connection, [item.event for item in fresh])
        now = self._clock.now()
        self._project_quiet_hours(emails, context, now)
        created = 0
        for item in fresh:
            with event_scope(item.event):
                created += self._store(context, item, now, rows)
        # Plain multi-row INSERTs, messages first (deliveries refer to them): the ORM's
        # unit of work costs more than everything else intake does.
        store.insert_many(Message, rows.messages)
        store.insert_many(Delivery, rows.deliveries)
        store.insert_many(DigestEntry, rows.digests)
        if context.erased:
            store.insert_many(ErasedMessage, erased_message_rows(context.erased, now))
        return created

    def _lease_now(
        self,
        delivery: dict[str, Any],
        now: datetime,
        rows: Rows,
        *,
        lane: str,
        endpoint: Endpoint | None,
    ) -> None:
        """Lease a delivery due now to this process's dispatcher if its lane has a free slot."""
        if self._handoff is None or delivery["next_attempt_at"] > now:
            return
        if not self._handoff.reserve(lane, endpoint):
            rows.refused.add(lane)
            return
        delivery["locked_until"] = self._handoff.lease_until()
        rows.handed.append(HandedOver(delivery, lane, endpoint))

    def _load(
        self,
        store: MessageIntake,
        emails: EmailLookups,
        events: list[CloudEvent],
    ) -> BatchContext:
        tenants = sorted({event.tenantid for event in events})
        endpoints, rules = self._routing.load(store, emails, tenants)
        goals: set[tuple[str, str]] = set()
        updates: dict[tuple[str, str], GoalSnapshot] = {}
        for event in events:
            goal = goal_of(event)
            if goal is None:
                continue
            key = (event.tenantid, goal.goal_id)
            goals.add(key)
            if isinstance(goal, GoalSnapshot) and (
                key not in updates or updates[key].version < goal.version
            ):
                updates[key] = goal
        pairs = _pairs_to_look_up(events, rules)
        return BatchContext(
            endpoints=endpoints,
            rules=rules,
            preferences=emails.preferences(pairs),
            unsubscribed=emails.unsubscribed(pairs),
            quiet_hours=emails.quiet_hours(goals),
            quiet_updates=updates,
        )

    def _project_quiet_hours(
        self, emails: EmailLookups, context: BatchContext, now: datetime
    ) -> None:
        """Keep each goal's policy quiet hours; write only where this batch has a newer one."""
        rows: list[dict[str, Any]] = []
        for (tenant, goal_id), goal in context.quiet_updates.items():
            known = context.quiet_hours.get((tenant, goal_id))
            if known is not None and known.version >= goal.version:
                continue
            quiet = goal.policy.quiet_hours if goal.policy else None
            start = quiet.start.strftime("%H:%M") if quiet else None
            end = quiet.end.strftime("%H:%M") if quiet else None
            rows.append(
                {
                    "tenant_id": tenant,
                    "goal_id": goal_id,
                    "quiet_start": start,
                    "quiet_end": end,
                    "version": goal.version,
                    "status": goal.status,
                    "updated_at": now,
                }
            )
            context.quiet_hours[(tenant, goal_id)] = GoalQuietHours(**rows[-1])
        emails.upsert_quiet_hours(rows)

    def _store(
        self,
        context: BatchContext,
        item: ConsumedEvent,
        now: datetime,
        rows: Rows,
    ) -> int:
        event = item.event
        routing: list[dict[str, Any]] = []
        started = time.time_ns() if tracing.enabled else 0
        webhooks = self._route_webhooks(event, context, routing, rows, now)
        emails = self._route_emails(event, context, routing, rows, now)
        payload = item.record.value or event.to_json()
        scrubbed = context.suppressed.scrub(event, payload)
        if scrubbed is not None:  # names an erased person: stored without them, never replayed
            payload = scrubbed
            context.erased.append((event.id, event.tenantid))
        message = {
            "id": event.id,
            "tenant_id": event.tenantid,
            "event_type": event.type,
            "kind": "event",
            "goal_id": goal_id_of(event),
            "correlation_id": event.correlationid,
            "payload": payload,
            "routing": routing,
            "event_time": event.time,
            "created_at": now,
        }
        if tracing.enabled:  # every row of the insert has the key, so set it even when None
            _routing_span(event, started, webhooks, emails)
            message["traceparent"] = tracing.current_traceparent()
        rows.messages.append(message)
        log.info(
            "notifications.event.accepted",
            event_type=event.type,
            webhook_deliveries=webhooks,
            email_deliveries=emails,
        )
        return webhooks + emails

    def _route_webhooks(
        self,
        event: CloudEvent,
        context: BatchContext,
        routing: list[dict[str, Any]],
        rows: Rows,
        now: datetime,
    ) -> int:
        data: dict[str, Any] | None = None
        count = 0
        for endpoint in context.endpoints.get(event.tenantid, []):
            reason = "matched"
            if not endpoint.enabled:
                reason = "disabled"
            elif not type_matches(endpoint.event_types, event.type):
                reason = "event_type_filter"
            elif endpoint.payload_filter:
                data = data if data is not None else event.data.model_dump(mode="json")
                if not payload_matches(endpoint.payload_filter, data):
                    reason = "payload_filter"
            routing.append(
                {
                    "channel": "webhook",
                    "target": endpoint.id,
                    "matched": reason == "matched",
                    "reason": reason,
                }
            )
            if reason == "matched":
                delivery = delivery_values(
                    event.tenantid,
                    event.id,
                    "webhook",
                    now,
                    endpoint.id,
                    due=now + self._webhook_delay,
                )
                self._lease_now(delivery, now, rows, lane=endpoint.id, endpoint=endpoint)
                rows.deliveries.append(delivery)
                count += 1
        return count

    def _route_emails(
        self,
        event: CloudEvent,
        context: BatchContext,
        routing: list[dict[str, Any]],
        rows: Rows,
        now: datetime,
    ) -> int:
        people = candidates(event)
        if not people:
            return 0
        roles = roles_for(event, context.rules.get(event.tenantid, {}))
        goal = goal_of(event)
        goal_quiet = context.quiet_hours.get((event.tenantid, goal.goal_id)) if goal else None
        count = 0
        for person in people:
            preference = context.preferences.get((event.tenantid, person.email))
            entry: dict[str, Any] = {
                "channel": "email",
                "target": person.email,
                "role": person.role,
                "matched": False,
            }
            routing.append(entry)
            if (event.tenantid, person.email) in context.suppressed:
                entry["target"] = context.suppressed.stand_in(event.tenantid, person.email)
                entry["reason"] = "erased"
                continue
            digest = preference is not None and preference.delivery == "digest"
            if digest and event.type in DIGEST_TYPES:
                rows.digests.append(digest_values(event, person, now))
            if not wants(roles, person):
                entry["reason"] = "rule"
                continue
            if (event.tenantid, person.email, event.type) in context.unsubscribed:
                entry["reason"] = "unsubscribed"
                continue
            if digest:
                entry["reason"] = "digest"
                continue
            zone = (preference.timezone if preference else None) or person.timezone
            quiet = None
            if preference is not None and preference.quiet_start:
                quiet = QuietHours.parse(preference.quiet_start, preference.quiet_end)
            elif goal_quiet is not None:
                quiet = QuietHours.parse(goal_quiet.quiet_start, goal_quiet.quiet_end)
            release = quiet.release_time(now, zone) if quiet else None
            entry["matched"] = True
            entry["reason"] = "quiet_hours" if release else "matched"
            if release:
                entry["detail"] = f"delayed until {release.isoformat()}"
            recipient = {
                **Recipient(person.email, person.name, person.role, zone).as_json(),
                "quiet": [quiet.start.strftime("%H:%M"), quiet.end.strftime("%H:%M")]
                if quiet
                else None,
            }
            delivery = delivery_values(
                event.tenantid,
                event.id,
                "email",
                now,
                None,
                due=max(release or now, now + self._email_delay),
                recipient=recipient,
            )
            self._lease_now(delivery, now, rows, lane=EMAIL_LANE, endpoint=None)
            rows.deliveries.append(delivery)
            count += 1
        return count


def _pairs_to_look_up(
    events: Sequence[CloudEvent], rules: dict[str, dict[str, list[str]]]
) -> set[tuple[str, str]]:
    """(tenant, email) of everyone whose preferences routing will read.

    That is the people an event may email (by the rules) and, for the types a
    digest rolls up, everyone on the goal; for the rest (most goal events
    email nobody) the preference and unsubscribe queries are skipped.
    """
    pairs: set[tuple[str, str]] = set()
    for event in events:
        people = candidates(event)
        if not people:
            continue
        roles = roles_for(event, rules.get(event.tenantid, {}))
        for person in people:
            if event.type in DIGEST_TYPES or wants(roles, person):
                pairs.add((event.tenantid, person.email))
    return pairs
