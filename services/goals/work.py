"""One transaction's work, and the rules the REST API and batch ingestion share.

``Work`` collects what a transaction changed: the goal states it touched and
the events they emitted, in order, each built right after its change so it
carries the snapshot of that moment. ``apply_upsert`` is PUT-by-ref and the
ingested ``ingest.goal.upserted`` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.goals import domain, milestones
from services.goals.domain import Change, GoalState
from services.goals.events import event_for, goal_snapshot
from services.goals.models import Milestone
from services.goals.repository import GoalRepository
from services.goals.schemas import GoalUpsert, MilestoneCreate
from shared.events.catalog.goals import GoalSnapshot, MilestoneOverdue
from shared.events.envelope import CloudEvent
from shared.http.problems import ProblemError

_UPSERT_FIELDS = ("title", "description", "category", "target_date")


def not_found(goal_id: str) -> ProblemError:
    return ProblemError(404, f"goal {goal_id} not found", slug="not-found")


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(state: GoalState, if_match: str | None) -> None:
    """Optimistic concurrency: a write naming another version than the current one fails 412."""
    if if_match is None:
        return
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" in tags or etag(state.goal.version) in tags:
        return
    raise ProblemError(
        412,
        f"goal is at version {state.goal.version}; If-Match named {if_match}",
        slug="precondition-failed",
        headers={"ETag": etag(state.goal.version)},
        current_version=state.goal.version,
    )


class Work:
    """One transaction's changes: the states touched and the events they emitted, in order."""

    def __init__(self, repository: GoalRepository | None, now: datetime) -> None:
        self._repository = repository
        self.now = now
        self.events: list[CloudEvent] = []
        self.states: list[GoalState] = []
        self.snapshots: dict[int, GoalSnapshot] = {}
        self._touched: set[int] = set()
        self.correlation_id: str | None = None
        self.causation_id: str | None = None

    @property
    def repository(self) -> GoalRepository:
        """Where this transaction reads; a creation's work (``repository`` None) reads nothing."""
        if self._repository is None:
            raise RuntimeError("this work only creates: it has no session to read in")
        return self._repository

    def emit(self, state: GoalState, change: Change) -> None:
        event = event_for(
            state,
            change,
            time=self.now,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
        self.events.append(event)
        if change.event is not MilestoneOverdue:
            # A milestone's deadline timer fires in a later transaction and continues the
            # chain of the event that made or changed the milestone (the overdue
            # announcement itself changes nothing on the row).
            made = [m for m in state.added if isinstance(m, Milestone)]
            for milestone in [change.milestone] if change.milestone is not None else made:
                milestone.correlation_id, milestone.causation_id = event.correlationid, event.id
                milestone.traceparent = event.traceparent
        if id(state) not in self._touched:
            self._touched.add(id(state))
            self.states.append(state)
        self.snapshots[id(state)] = event.data.goal  # type: ignore[attr-defined]

    def undo_since(self, events: int, states: int) -> None:
        """Forget events and newly touched states after the given counts (a refused item)."""
        for state in self.states[states:]:
            self._touched.discard(id(state))
            self.snapshots.pop(id(state), None)
        del self.events[events:]
        del self.states[states:]

    def snapshot(self, state: GoalState) -> GoalSnapshot:
        """The state's latest snapshot, built once."""
        cached = self.snapshots.get(id(state))
        if cached is None or cached.version != state.goal.version:
            cached = self.snapshots[id(state)] = goal_snapshot(state)
        return cached


def apply_upsert(
    work: Work,
    tenant_id: str,
    external_ref: str,
    payload: GoalUpsert,
    state: GoalState | None,
    *,
    if_match: str | None = None,
    prefix: str = "body",
) -> tuple[GoalState, bool]:
    """Create the goal known as ``external_ref`` (``state`` None) or bring it in line.

    Shared by ``PUT /v1/goals/by-ref/{ref}`` and the ingested
    ``ingest.goal.upserted``; replaying the same payload changes nothing and
    emits nothing. Returns the state and whether it was created.
    """
    participants = [p.to_event() for p in payload.participants]
    policy = payload.policy.to_event() if payload.policy else None
    if state is None:
        if if_match not in (None, "*"):
            raise ProblemError(
                412, f"no goal has external_ref {external_ref}", slug="precondition-failed"
            )
        fields = {**payload.model_dump(include=set(_UPSERT_FIELDS)), "external_ref": external_ref}
        created = domain.new_goal(
            tenant_id=tenant_id,
            fields=fields,
            participants=participants,
            policy=policy,
            milestones=[m.model_dump() for m in payload.milestones],
            status=payload.status,
            now=work.now,
            emit=work.emit,
            prefix=prefix,
        )
        return created, True
    check_if_match(state, if_match)
    changes: dict[str, Any] = {name: getattr(payload, name) for name in _UPSERT_FIELDS}
    changes.update(participants=participants, policy=policy)
    domain.update_goal(state, changes, now=work.now, emit=work.emit, prefix=prefix)
    upsert_milestones(work, state, payload.milestones, prefix=prefix)
    return state, False


def upsert_milestones(
    work: Work, state: GoalState, items: list[MilestoneCreate], *, prefix: str
) -> None:
    """Match each item by external_ref, else by title; update the match or add a new one."""
    for index, item in enumerate(items):
        found = (
            state.milestone_by_ref(item.external_ref)
            if item.external_ref
            else next((m for m in state.milestones if m.title == item.title), None)
        )
        values: Mapping[str, Any] = item.model_dump()
        if found is None:
            milestones.add_milestone(
                state, values, now=work.now, emit=work.emit, prefix=f"{prefix}.milestones.{index}"
            )
        else:
            changes = {k: v for k, v in values.items() if k in item.model_fields_set}
            changes.pop("external_ref", None)
            milestones.update_milestone(
                state,
                found,
                changes,
                now=work.now,
                emit=work.emit,
                prefix=f"{prefix}.milestones.{index}",
            )
