"""Calendar feeds: their signed, revocable tokens, the goal's listing, and rendering a feed.

A feed belongs to one person (by email) and either one goal or, with an
empty ``goal_id``, all their goals of the tenant. Its URL is
``{PUBLIC_BASE_URL}/v1/calendars/{token}.ics``: the token is a signed link
(:mod:`shared.auth.links`, action ``calendar``, the same secret as every
email link) naming the feed row and its version, signed with the row's
``issued_at`` so the URL stays the same until it is rotated. A token is
honoured only while its row exists, is not revoked and has the same version
(rotating bumps it), and until it expires (``calendar_token_days``). Anything
else answers 404, whatever the reason, so a URL tells nobody whether a goal
exists.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Calendar
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.sessions.calendars import content
from services.sessions.forecast import ScheduleBuilder
from services.sessions.models import CalendarFeed, GoalProjection
from services.sessions.repository import SessionsRepository
from services.sessions.schemas import CalendarLink, GoalCalendars, ParticipantCalendars
from services.sessions.settings import SessionsSettings
from services.sessions.timers.planner import GoalContext, Rules
from services.sessions.timers.repository import TimerRepository
from services.sessions.timers.timeline import GoalTimeline, not_found
from shared.auth.links import LinkError, sign_link, verify_link
from shared.clock import Clock
from shared.http.problems import ProblemError
from shared.ical import new_calendar, serialise
from shared.logs import get_logger
from shared.runtime import ServiceRuntime

log = get_logger(__name__)

ACTION = "calendar"
PERSON = ""
"""``goal_id`` of a person's feed across all their goals of the tenant."""
ENDED_STATES = ("ended",)


def feed_not_found() -> ProblemError:
    return ProblemError(404, "no such calendar", slug="not-found")


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    body: bytes
    etag: str


class CalendarService(GoalTimeline):
    def __init__(
        self, runtime: ServiceRuntime, *, clock: Clock, rules: Rules, settings: SessionsSettings
    ) -> None:
        super().__init__(runtime, clock=clock, rules=rules)
        self._settings = settings
        self._secret = settings.link_signing_secret.get_secret_value()
        self._ttl = timedelta(days=settings.calendar_token_days)

    # Tokens ------------------------------------------------------------------

    def token(self, feed: CalendarFeed) -> str:
        return sign_link(
            self._secret,
            action=ACTION,
            tenant_id=feed.tenant_id,
            subject=feed.id,
            claims={"v": feed.version},
            ttl=self._ttl,
            now=feed.issued_at,
        )

    def link(self, feed: CalendarFeed) -> CalendarLink:
        expires = feed.issued_at + self._ttl
        usable = feed.revoked_at is None and expires > self.now()
        base = self._settings.public_base_url.rstrip("/")
        return CalendarLink(
            feed_id=feed.id,
            scope="person" if feed.goal_id == PERSON else "goal",
            url=f"{base}/v1/calendars/{self.token(feed)}.ics" if usable else None,
            version=feed.version,
            issued_at=feed.issued_at,
            expires_at=expires,
            revoked_at=feed.revoked_at,
        )

    async def _feed_of_token(self, token: str) -> CalendarFeed:
        try:
            claims = verify_link(self._secret, token, action=ACTION, now=self.now())
        except LinkError as error:
            log.info("sessions.calendar.refused", reason=str(error))
            raise feed_not_found() from None
        feed_id, version = claims.get("sub"), claims.get("v")
        if not isinstance(feed_id, str) or len(feed_id) > 36 or not isinstance(version, int):
            log.info("sessions.calendar.refused", reason="incomplete token")
            raise feed_not_found()
        async with self._db.reader() as session:
            feed = await SessionsRepository(session).calendar_feed(feed_id)
        reason = None
        if feed is None or feed.tenant_id != claims.get("tenant"):
            reason = "no such feed"
        elif feed.version != version:
            reason = "rotated since"
        elif feed.revoked_at is not None:
            reason = "revoked"
        if reason or feed is None:
            log.info("sessions.calendar.refused", reason=reason, feed_id=feed_id)
            raise feed_not_found()
        return feed

    # Listing, rotating, revoking ---------------------------------------------

    async def goal_calendars(self, tenant_id: str, goal_id: str) -> GoalCalendars:
        """Each participant's feed of this goal and of all their goals (created on first ask)."""
        async with self._db.reader() as session:
            repo = SessionsRepository(session)
            row = await repo.goal(tenant_id, goal_id)
            if row is None:
                raise not_found(goal_id)
            feeds = await repo.calendar_feeds(tenant_id, [goal_id, PERSON])
        people = GoalContext.of(row).snapshot.participants
        have = {(feed.goal_id, feed.email): feed for feed in feeds}
        wanted = [(scope, p.email.lower()) for p in people for scope in (goal_id, PERSON)]
        missing = [key for key in dict.fromkeys(wanted) if key not in have]
        if missing:
            have.update(await self._create(tenant_id, missing))
        return GoalCalendars(
            goal_id=goal_id,
            participants=[
                ParticipantCalendars(
                    role=person.role,
                    name=person.name,
                    email=person.email,
                    goal_feed=self.link(have[(goal_id, person.email.lower())]),
                    person_feed=self.link(have[(PERSON, person.email.lower())]),
                )
                for person in people
            ],
        )

    async def participant_feed(self, tenant_id: str, goal_id: str, email: str) -> CalendarLink:
        """One participant's feed of one goal (the "add to calendar" link of reminder emails)."""
        email = email.lower()
        async with self._db.reader() as session:
            repo = SessionsRepository(session)
            row = await repo.goal(tenant_id, goal_id)
            if row is None or not _takes_part(row, email):
                raise not_found(goal_id)
            feeds = await repo.calendar_feeds(tenant_id, [goal_id])
        found = {(feed.goal_id, feed.email): feed for feed in feeds}
        if (goal_id, email) not in found:
            found.update(await self._create(tenant_id, [(goal_id, email)]))
        return self.link(found[(goal_id, email)])

    async def _create(
        self, tenant_id: str, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], CalendarFeed]:
        now = self.now()
        try:
            async with self._db.transaction() as session:
                for goal_id, email in keys:
                    session.add(
                        CalendarFeed(
                            id=str(uuid.uuid4()),
                            tenant_id=tenant_id,
                            goal_id=goal_id,
                            email=email,
                            version=1,
                            issued_at=now,
                            created_at=now,
                        )
                    )
        except IntegrityError:
            pass  # a concurrent listing created them first: read theirs
        async with self._db.reader() as session:
            feeds = await SessionsRepository(session).calendar_feeds(
                tenant_id, {goal_id for goal_id, _ in keys}
            )
        return {(feed.goal_id, feed.email): feed for feed in feeds}

    async def rotate(self, tenant_id: str, feed_id: str) -> CalendarLink:
        """A new URL for the feed (and a revoked one works again); the old URL answers 404."""
        async with self._db.transaction() as session:
            feed = await self._owned(SessionsRepository(session), tenant_id, feed_id)
            feed.version += 1
            feed.issued_at = self.now()
            feed.revoked_at = None
        log.info("sessions.calendar.rotated", feed_id=feed_id, version=feed.version)
        return self.link(feed)

    async def revoke(self, tenant_id: str, feed_id: str) -> CalendarLink:
        async with self._db.transaction() as session:
            feed = await self._owned(SessionsRepository(session), tenant_id, feed_id)
            if feed.revoked_at is None:
                feed.revoked_at = self.now()
        log.info("sessions.calendar.revoked", feed_id=feed_id)
        return self.link(feed)

    async def _owned(self, repo: SessionsRepository, tenant_id: str, feed_id: str) -> CalendarFeed:
        feed = await repo.calendar_feed(feed_id, for_update=True)
        if feed is None or feed.tenant_id != tenant_id:
            raise ProblemError(404, f"calendar feed {feed_id} not found", slug="not-found")
        return feed

    # The feed itself -----------------------------------------------------------

    async def render(self, token: str) -> RenderedFeed:
        feed = await self._feed_of_token(token)
        now = self.now()
        async with self._db.reader() as session:
            repo = SessionsRepository(session)
            if feed.goal_id == PERSON:
                rows = [
                    row
                    for row in await repo.tenant_goals(feed.tenant_id)
                    if _takes_part(row, feed.email)
                ]
                name = f"Followthrough: {feed.email}"
            else:
                row = await repo.goal(feed.tenant_id, feed.goal_id)
                if row is None or not _takes_part(row, feed.email):
                    # Removed from the goal since: the feed is no longer theirs to read.
                    raise feed_not_found()
                rows = [row]
                name = f"Followthrough: {GoalContext.of(row).snapshot.title}"
            calendar = new_calendar(name=name)
            for row in sorted(rows, key=lambda r: r.goal_id):
                await self._add_goal(calendar, session, GoalContext.of(row), feed.email, now)
        body = serialise(calendar)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return RenderedFeed(body, etag)

    async def _add_goal(
        self,
        calendar: Calendar,
        session: AsyncSession,
        goal: GoalContext,
        email: str,
        now: datetime,
    ) -> None:
        """One goal's check-ins (for every participant) and the sessions ``email`` is in."""
        if goal.row.schedule_state in ENDED_STATES or goal.snapshot.status in (
            "completed",
            "abandoned",
        ):
            return  # an ended goal contributes nothing: its feed is empty but valid
        repo = SessionsRepository(session)
        since = now - timedelta(days=self._settings.calendar_history_days)
        end = now + timedelta(days=self._settings.calendar_horizon_days)
        stored = await repo.occurrences_since(goal.goal_id, since, content.MAX_CHECKINS)
        timers = await TimerRepository(session).unfired(goal_id=goal.goal_id)
        instances = content.stored_instances(stored, timers)
        if goal.active:
            latest = await repo.latest_occurrence(goal.goal_id)
            builder = ScheduleBuilder(goal, now, end, self.rules.escalation_delay)
            builder.future(latest)
            instances += content.planned_instances(item for item in builder.items if item.at > now)
        if instances:
            content.add_checkins(calendar, goal, instances)
        sessions = await repo.sessions_since(goal.goal_id, since, content.MAX_SESSIONS)
        content.add_sessions(calendar, goal, sessions, email=email)


def _takes_part(row: GoalProjection, email: str) -> bool:
    return any(str(p.get("email", "")).lower() == email for p in row.snapshot["participants"])
