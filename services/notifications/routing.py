"""What routing needs of a tenant (endpoints, email rules), cached per process.

Every batch the intake routes used to read each tenant's endpoints and email
rules again: two queries and a dozen ORM objects per batch, for data that
changes a few times a day. The cache keeps them per tenant under the
``routing_version`` they were read with; every change to an endpoint or an
email rule bumps that version in its own transaction (an ORM flush touching
either model, through :func:`track_routing_changes`, or the repository's Core
updates of endpoints), so the intake reads one row per batch and reloads only
when someone, in this process or another replica, changed something.

The cached ``Endpoint`` objects are detached and read-only: the dispatcher
reads their URL, secret and failure clock; nothing writes through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from services.notifications.email.repository import EmailLookups
from services.notifications.models import EmailRule, Endpoint
from services.notifications.repository import BUMP_ROUTING_VERSION, MessageIntake

MAX_TENANTS = 10_000
"""Beyond this many tenants cached, start again (a bound on memory, not a correctness rule)."""

_ROUTING_MODELS = (Endpoint, EmailRule)


class RoutingCache:
    """Each tenant's endpoints and email rules, as of one routing version."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._endpoints: dict[str, list[Endpoint]] = {}
        self._rules: dict[str, dict[str, list[str]]] = {}

    def load(
        self, store: MessageIntake, emails: EmailLookups, tenants: Sequence[str]
    ) -> tuple[dict[str, list[Endpoint]], dict[str, dict[str, list[str]]]]:
        """The endpoints and rules of ``tenants``, read in the caller's transaction if stale."""
        version = store.routing_version()
        if version != self._version or len(self._endpoints) > MAX_TENANTS:
            self._endpoints, self._rules, self._version = {}, {}, version
        missing = [tenant for tenant in tenants if tenant not in self._endpoints]
        if missing:
            self._endpoints.update(store.tenant_endpoints(missing))
            self._rules.update(emails.rules(missing))
        return (
            {tenant: self._endpoints[tenant] for tenant in tenants},
            {tenant: self._rules[tenant] for tenant in tenants},
        )


def track_routing_changes(session_class: type[Session] = Session) -> None:
    """Bump the routing version in any flush that adds, changes or deletes an endpoint or rule."""
    if event.contains(session_class, "before_flush", _bump_on_routing_change):
        return
    event.listen(session_class, "before_flush", _bump_on_routing_change)


def _bump_on_routing_change(session: Session, _: UOWTransaction, __: Any) -> None:
    for objects in (session.new, session.dirty, session.deleted):
        if any(isinstance(obj, _ROUTING_MODELS) for obj in objects):
            session.execute(BUMP_ROUTING_VERSION)
            return
