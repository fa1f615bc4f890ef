"""The goal aggregate and its rules: what may change, how, and which event each change emits.

Every operation validates completely before it mutates anything, so a refused
change (one bad item of an ingested batch, say) leaves the loaded state as it
was. Each change bumps the goal's ``version`` and reports itself through
``emit`` at once, so the event it becomes carries the snapshot of exactly
that moment. The REST API and batch ingestion share these functions.

Status machine (``POST /v1/goals/{id}/<action>``)::

    activate  draft            -> active
    pause     active           -> paused
    resume    paused           -> active
    complete  active | paused  -> completed
    abandon   draft | active | paused -> abandoned

A draft was never started, so it cannot be completed, only activated or
abandoned. Completed and abandoned goals are closed: nothing on them changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.goals.models import Goal, Milestone, ProgressReport
from services.goals.validation import (
    FieldErrors,
    check_not_past,
    check_people,
    check_policy_dates,
    goal_zone,
    local_today,
)
from shared.events.catalog.common import Participant
from shared.events.catalog.goals import (
    GoalAbandoned,
    GoalActivated,
    GoalCompleted,
    GoalCreated,
    GoalPaused,
    GoalResumed,
    GoalUpdated,
)
from shared.events.catalog.policy import CheckinPolicy
from shared.events.envelope import CloudEvent
from shared.http.problems import ProblemError

MAX_MILESTONES = 200
CLOSED = frozenset({"completed", "abandoned"})
TRANSITIONS: dict[str, tuple[frozenset[str], str, type[CloudEvent]]] = {
    "activate": (frozenset({"draft"}), "active", GoalActivated),
    "pause": (frozenset({"active"}), "paused", GoalPaused),
    "resume": (frozenset({"paused"}), "active", GoalResumed),
    "complete": (frozenset({"active", "paused"}), "completed", GoalCompleted),
    "abandon": (frozenset({"draft", "active", "paused"}), "abandoned", GoalAbandoned),
}


@dataclass(frozen=True, slots=True)
class Progress:
    percent: int
    note: str | None
    reported_at: datetime
    previous_percent: int | None


@dataclass(frozen=True, slots=True)
class Change:
    """One state change, to become one event."""

    event: type[CloudEvent]
    milestone: Milestone | None = None
    previous_status: str | None = None
    reason: str | None = None
    progress: Progress | None = None


Emit = Callable[["GoalState", Change], None]
"""Called right after each change with the state as it now is."""


@dataclass(eq=False)
class GoalState:
    """A goal with its milestones and its parsed participants and policy."""

    goal: Goal
    milestones: list[Milestone]
    participants: list[Participant]
    policy: CheckinPolicy | None
    is_new: bool = False
    participants_changed: bool = False
    added: list[Milestone | ProgressReport] = field(default_factory=list)

    @classmethod
    def of(cls, goal: Goal, milestones: list[Milestone]) -> GoalState:
        """The state of a stored goal.

        Participants were validated when they were written (``model_dump`` of
        validated models is all this service stores), so they are rebuilt
        without validating again: an email address costs ~25 us to validate,
        and a batch of progress reports loads every goal it names.
        """
        return cls(
            goal=goal,
            milestones=milestones,
            participants=[Participant.model_construct(**p) for p in goal.participants],
            policy=CheckinPolicy.model_validate(goal.policy) if goal.policy else None,
        )

    @property
    def zone(self) -> str:
        return goal_zone(self.participants, self.policy)

    def milestone(self, milestone_id: str) -> Milestone | None:
        return next((m for m in self.milestones if m.id == milestone_id), None)

    def milestone_by_ref(self, external_ref: str) -> Milestone | None:
        return next((m for m in self.milestones if m.external_ref == external_ref), None)


def overdue_instant(due: date | None, zone: str) -> datetime | None:
    """A milestone due on a date is overdue from the midnight that ends that date, in ``zone``."""
    if due is None:
        return None
    return datetime.combine(due + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def touch(state: GoalState, now: datetime) -> None:
    state.goal.version += 1
    state.goal.updated_at = now


def ensure_open(state: GoalState) -> None:
    if state.goal.status in CLOSED:
        raise ProblemError(
            409,
            f"goal is {state.goal.status}; a closed goal can no longer change",
            slug="goal-closed",
            current_status=state.goal.status,
        )


def new_goal(
    *,
    tenant_id: str,
    fields: Mapping[str, Any],
    participants: list[Participant],
    policy: CheckinPolicy | None,
    milestones: list[Mapping[str, Any]],
    status: str,
    now: datetime,
    emit: Emit,
    prefix: str = "body",
) -> GoalState:
    """A new goal (``fields``: external_ref, title, description, category, target_date)."""
    errors = FieldErrors(prefix)
    check_people(errors, participants, policy)
    zone = goal_zone(participants, policy)
    today = local_today(zone, now)
    check_not_past(errors, "target_date", fields.get("target_date"), today)
    if policy is not None:
        check_policy_dates(errors, policy, now)
    check_new_milestones(errors, milestones, [], today, "milestones")
    errors.raise_if_any()
    goal = Goal(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        external_ref=fields.get("external_ref"),
        title=fields["title"],
        description=fields.get("description"),
        category=fields.get("category"),
        target_date=fields.get("target_date"),
        status=status,
        version=1,
        participants=[p.model_dump(mode="json") for p in participants],
        policy=policy.model_dump(mode="json") if policy else None,
        progress_percent=None,
        created_at=now,
        updated_at=now,
    )
    state = GoalState(goal, [], participants, policy, is_new=True, participants_changed=True)
    for item in milestones:
        new_milestone(state, item, now)
    emit(state, Change(GoalCreated))
    return state


def check_new_milestones(
    errors: FieldErrors,
    items: list[Mapping[str, Any]],
    existing: list[Milestone],
    today: date,
    field_name: str,
) -> None:
    refs = {m.external_ref for m in existing if m.external_ref}
    if len(existing) + len(items) > MAX_MILESTONES:
        errors.add(field_name, f"a goal has at most {MAX_MILESTONES} milestones")
    for index, item in enumerate(items):
        check_not_past(errors, f"{field_name}.{index}.due_date", item.get("due_date"), today)
        ref = item.get("external_ref")
        if ref is not None:
            if ref in refs:
                errors.add(f"{field_name}.{index}.external_ref", f"milestone {ref} already exists")
            refs.add(ref)


def new_milestone(state: GoalState, item: Mapping[str, Any], now: datetime) -> Milestone:
    position = max((m.position for m in state.milestones), default=0) + 1
    milestone = Milestone(
        id=str(uuid.uuid4()),
        tenant_id=state.goal.tenant_id,
        goal_id=state.goal.id,
        position=position,
        external_ref=item.get("external_ref"),
        title=item["title"],
        due_date=item.get("due_date"),
        status="pending",
        completed_at=None,
        evidence_note=None,
        overdue_at=overdue_instant(item.get("due_date"), state.zone),
        overdue_fired_at=None,
        created_at=now,
        updated_at=now,
    )
    state.milestones.append(milestone)
    state.added.append(milestone)
    return milestone


def update_goal(
    state: GoalState, changes: Mapping[str, Any], *, now: datetime, emit: Emit, prefix: str = "body"
) -> bool:
    """Apply the given fields (a merge patch); emits goal.updated when anything differs.

    A change that changes nothing is no change: it succeeds, even on a closed
    goal, so replaying an upsert is harmless.
    """
    goal = state.goal
    participants = changes.get("participants", state.participants)
    policy = changes.get("policy", state.policy)
    if "title" in changes and changes["title"] is None:
        raise null_field(prefix, "title")
    if "participants" in changes and changes["participants"] is None:
        raise null_field(prefix, "participants")
    errors = FieldErrors(prefix)
    people_changed = participants != state.participants
    policy_changed = policy != state.policy
    if people_changed or policy_changed:
        check_people(errors, participants, policy)
    zone = goal_zone(participants, policy)
    plain = ("external_ref", "title", "description", "category", "target_date")
    updates = {k: changes[k] for k in plain if k in changes and changes[k] != getattr(goal, k)}
    if "target_date" in updates:
        check_not_past(errors, "target_date", updates["target_date"], local_today(zone, now))
    if policy_changed and policy is not None:
        check_policy_dates(errors, policy, now)
    if not (updates or people_changed or policy_changed):
        return False
    ensure_open(state)
    errors.raise_if_any()
    for key, value in updates.items():
        setattr(goal, key, value)
    if people_changed:
        state.participants = list(participants)
        goal.participants = [p.model_dump(mode="json") for p in participants]
        state.participants_changed = True
    if policy_changed:
        state.policy = policy
        goal.policy = policy.model_dump(mode="json") if policy else None
    for milestone in state.milestones:
        overdue_at = overdue_instant(milestone.due_date, zone)
        if milestone.overdue_at != overdue_at:
            milestone.overdue_at = overdue_at
    touch(state, now)
    emit(state, Change(GoalUpdated))
    return True


def null_field(prefix: str, name: str) -> ProblemError:
    errors = FieldErrors(prefix)
    errors.add(name, f"{name} cannot be null")
    return ProblemError(
        422, f"{prefix}.{name}: cannot be null", slug="validation-error", errors=errors.items
    )


def transition(
    state: GoalState, action: str, *, reason: str | None, now: datetime, emit: Emit
) -> None:
    allowed, target, event = TRANSITIONS[action]
    current = state.goal.status
    if current not in allowed:
        raise ProblemError(
            409,
            f"goal is {current}; {action} needs a goal that is {' or '.join(sorted(allowed))}",
            slug="illegal-transition",
            current_status=current,
        )
    state.goal.status = target
    touch(state, now)
    emit(state, Change(event, previous_status=current, reason=reason))
