"""Checks that need more than one field, or today's date, and so cannot live in the schemas.

Each failure names the field (``body.participants.0.timezone``) the way
request validation does, so a client sees one error format. ``prefix`` is
``body`` for the REST API and ``data`` for ingested events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from shared.events.catalog.common import Participant
from shared.events.catalog.policy import CheckinPolicy, RRuleCadence, rrule_until
from shared.http.problems import ProblemError


class FieldErrors:
    """Collects field errors; ``raise_if_any`` turns them into one 422 problem."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        path = f"{self.prefix}.{field}" if self.prefix else field
        self.items.append({"field": path, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            raise validation_problem(self.items)


def validation_problem(errors: Sequence[dict[str, str]]) -> ProblemError:
    detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors[:5])
    return ProblemError(
        422,
        detail,
        slug="validation-error",
        title="Request validation failed",
        errors=list(errors),
    )


def goal_zone(participants: Sequence[Participant], policy: CheckinPolicy | None) -> str:
    """The zone a goal's dates are read in: the policy's, else the mentee's, else UTC."""
    if policy is not None:
        return policy.timezone
    mentee = next((p for p in participants if p.role == "mentee"), None)
    return (mentee.timezone if mentee else None) or "UTC"


def local_today(zone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def check_people(
    errors: FieldErrors,
    participants: Sequence[Participant],
    policy: CheckinPolicy | None,
    *,
    participants_field: str = "participants",
    policy_field: str = "policy",
) -> None:
    """Exactly one mentee with a zone, no person twice in a role, an escalation ladder
    that only names roles the goal has."""
    mentees = [i for i, p in enumerate(participants) if p.role == "mentee"]
    if len(mentees) != 1:
        errors.add(participants_field, "participants must include exactly one mentee")
    for index in mentees[:1]:
        if participants[index].timezone is None:
            errors.add(
                f"{participants_field}.{index}.timezone", "the mentee needs an IANA time zone"
            )
    seen: set[tuple[str, str]] = set()
    for index, person in enumerate(participants):
        key = (person.role, person.email.lower())
        if key in seen:
            errors.add(
                f"{participants_field}.{index}.email",
                f"{person.email} is already a {person.role} of this goal",
            )
        seen.add(key)
    if policy is None:
        return
    roles = {p.role for p in participants}
    for step_index, step in enumerate(policy.escalation):
        for role_index, role in enumerate(step.notify_roles):
            if role not in roles:
                errors.add(
                    f"{policy_field}.escalation.{step_index}.notify_roles.{role_index}",
                    f"no participant of this goal has the role {role}",
                )


def check_not_past(errors: FieldErrors, field: str, value: date | None, today: date) -> None:
    """A date being set now must not already be over (in the goal's zone)."""
    if value is not None and value < today:
        errors.add(field, f"{value.isoformat()} is in the past (today is {today.isoformat()})")


def check_policy_dates(
    errors: FieldErrors, policy: CheckinPolicy, now: datetime, *, field: str = "policy"
) -> None:
    """A policy being set must not start in the past nor end (RRULE UNTIL) before now."""
    today = local_today(policy.timezone, now)
    check_not_past(errors, f"{field}.starts_on", policy.starts_on, today)
    if isinstance(policy.cadence, RRuleCadence):
        until = rrule_until(policy.cadence.rrule)
        if until is not None and until < now:
            # the same path request validation gives: cadence.<kind>.<field>
            errors.add(
                f"{field}.cadence.rrule.rrule", "RRULE UNTIL is in the past: it would never fire"
            )
