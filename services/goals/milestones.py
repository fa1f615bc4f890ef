"""Milestone and progress rules of the goal aggregate (see ``domain.py`` for the goal itself).

Like every operation on a goal they validate fully before they change
anything, bump the goal's version (except the overdue observation) and
report each change through ``emit`` at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.goals.domain import (
    Change,
    Emit,
    GoalState,
    Progress,
    check_new_milestones,
    ensure_open,
    new_milestone,
    null_field,
    overdue_instant,
    touch,
)
from services.goals.models import Milestone, ProgressReport
from services.goals.validation import FieldErrors, check_not_past, local_today
from shared.events.catalog.goals import (
    MilestoneCompleted,
    MilestoneCreated,
    MilestoneOverdue,
    MilestoneSkipped,
    MilestoneUpdated,
    ProgressReported,
)
from shared.http.problems import ProblemError


def add_milestone(
    state: GoalState,
    item: Mapping[str, Any],
    *,
    now: datetime,
    emit: Emit,
    prefix: str = "body",
) -> Milestone:
    ensure_open(state)
    errors = FieldErrors("")
    check_new_milestones(errors, [item], state.milestones, local_today(state.zone, now), prefix)
    for error in errors.items:  # a single item: name its fields, not a list position
        error["field"] = error["field"].replace(f"{prefix}.0.", f"{prefix}.")
    errors.raise_if_any()
    milestone = new_milestone(state, item, now)
    touch(state, now)
    emit(state, Change(MilestoneCreated, milestone=milestone))
    return milestone


def update_milestone(
    state: GoalState,
    milestone: Milestone,
    changes: Mapping[str, Any],
    *,
    now: datetime,
    emit: Emit,
    prefix: str = "body",
) -> bool:
    if "title" in changes and changes["title"] is None:
        raise null_field(prefix, "title")
    updates = {k: v for k, v in changes.items() if v != getattr(milestone, k)}
    errors = FieldErrors(prefix)
    if "due_date" in updates:
        check_not_past(errors, "due_date", updates["due_date"], local_today(state.zone, now))
    ref = updates.get("external_ref")
    if ref is not None and any(m.external_ref == ref for m in state.milestones):
        errors.add("external_ref", f"milestone {ref} already exists")
    if not updates:
        return False
    ensure_open(state)
    errors.raise_if_any()
    for key, value in updates.items():
        setattr(milestone, key, value)
    if "due_date" in updates:
        milestone.overdue_at = overdue_instant(milestone.due_date, state.zone)
        milestone.overdue_fired_at = None  # a new due date may become overdue once again
    milestone.updated_at = now
    touch(state, now)
    emit(state, Change(MilestoneUpdated, milestone=milestone))
    return True


def finish_milestone(
    state: GoalState,
    milestone: Milestone,
    outcome: str,
    *,
    note: str | None,
    at: datetime | None = None,
    now: datetime,
    emit: Emit,
) -> None:
    """Complete or skip a pending milestone (``outcome``: completed | skipped)."""
    ensure_open(state)
    if milestone.status != "pending":
        verb = "completed" if outcome == "completed" else "skipped"
        raise ProblemError(
            409,
            f"milestone is {milestone.status}; only a pending milestone can be {verb}",
            slug="illegal-transition",
            current_status=milestone.status,
        )
    milestone.status = outcome
    milestone.completed_at = (at or now) if outcome == "completed" else None
    milestone.evidence_note = note
    milestone.updated_at = now
    touch(state, now)
    emit(
        state,
        Change(
            MilestoneCompleted if outcome == "completed" else MilestoneSkipped,
            milestone=milestone,
        ),
    )


def report_progress(
    state: GoalState,
    percent: int,
    *,
    note: str | None,
    at: datetime | None = None,
    now: datetime,
    emit: Emit,
) -> ProgressReport:
    ensure_open(state)
    previous = state.goal.progress_percent
    report = ProgressReport(
        id=str(uuid.uuid4()),
        tenant_id=state.goal.tenant_id,
        goal_id=state.goal.id,
        percent=percent,
        note=note,
        reported_at=at or now,
        created_at=now,
    )
    state.added.append(report)
    state.goal.progress_percent = percent
    touch(state, now)
    emit(state, Change(ProgressReported, progress=Progress(percent, note, at or now, previous)))
    return report


def fire_overdue(state: GoalState, milestone: Milestone, *, now: datetime, emit: Emit) -> None:
    """Tell the world a milestone's due date passed (once: the caller has claimed it).

    An observation rather than a change of the goal, so the version stays.
    """
    emit(state, Change(MilestoneOverdue, milestone=milestone))
