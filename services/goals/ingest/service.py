"""Batch ingestion: up to 500 integrator CloudEvents applied in order, in one transaction.

The whole batch is one request's work: one query finds which events were
accepted before, one loads (and locks) every goal the batch names with their
milestones, the items are applied in order in memory, and one flush writes
goals, milestones, progress, the dedupe rows, the outbox and the history.

Each item is all or nothing: an item that fails is rolled back in memory
(a checkpoint of the goal it touched) and answered ``rejected`` with the
reason; the others go on. An item accepted before (same ``source`` and
``id``) is answered ``duplicate`` and changes nothing. Each event an item
causes has the item's id as causation id and the item's ``correlationid``
(or the request's) as correlation id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from services.goals import domain, milestones
from services.goals.domain import GoalState
from services.goals.ingest.schemas import (
    LIFECYCLE_ACTIONS,
    BatchResult,
    FieldIssue,
    GoalRef,
    IngestEvent,
    IngestGoalUpserted,
    IngestMilestoneCompleted,
    IngestMilestoneSkipped,
    IngestMilestoneUpserted,
    IngestProgressReported,
    ItemResult,
    MilestoneRef,
)
from services.goals.models import Goal, Milestone
from services.goals.service import GoalsService
from services.goals.work import Work, apply_upsert, upsert_milestones
from shared.http.problems import ProblemError
from shared.logs import get_logger

log = get_logger(__name__)
_ADAPTER: TypeAdapter[Any] = TypeAdapter(IngestEvent)
FUTURE_TOLERANCE = timedelta(minutes=5)


class Rejected(Exception):
    def __init__(self, reason: str, errors: Sequence[dict[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = [FieldIssue(**e) for e in errors] if errors else None


@dataclass
class _Item:
    index: int
    event: Any
    key: tuple[str, str]


class BatchIngestor:
    def __init__(self, service: GoalsService) -> None:
        self._service = service

    async def ingest(self, tenant_id: str, items: Sequence[Any]) -> BatchResult:
        results: dict[int, ItemResult] = {}
        valid: list[_Item] = []
        for index, raw in enumerate(items):
            try:
                event = _parse(raw, tenant_id)
            except Rejected as rejected:
                results[index] = _rejected(index, raw, rejected)
                continue
            valid.append(_Item(index, event, (event.source, event.id)))
        for attempt in (1, 2):
            try:
                applied = await self._apply(tenant_id, valid)
                break
            except IntegrityError:  # a concurrent writer created a goal we create: go again
                if attempt == 2:
                    raise
        results.update(applied)
        ordered = [results[i] for i in sorted(results)]
        summary = BatchResult(
            accepted=sum(r.status == "accepted" for r in ordered),
            duplicates=sum(r.status == "duplicate" for r in ordered),
            rejected=sum(r.status == "rejected" for r in ordered),
            results=ordered,
        )
        log.info(
            "goals.ingest.batch",
            items=len(ordered),
            accepted=summary.accepted,
            duplicates=summary.duplicates,
            rejected=summary.rejected,
        )
        return summary

    async def _apply(self, tenant_id: str, items: list[_Item]) -> dict[int, ItemResult]:
        results: dict[int, ItemResult] = {}
        async with self._service.work() as work:
            repository = work.repository
            seen = await repository.ingested(tenant_id, [item.key for item in items])
            refs, ids = _goal_keys(items)
            states = await repository.load_many(tenant_id, ids=ids, refs=refs, for_update=True)
            book = _Book(states)
            remembered: list[dict[str, Any]] = []
            for item in items:
                event = item.event
                if item.key in seen:
                    results[item.index] = ItemResult(
                        index=item.index, id=event.id, status="duplicate"
                    )
                    continue
                before = len(work.events)
                work.correlation_id, work.causation_id = event.correlationid, event.id
                try:
                    state = _apply_one(work, book, tenant_id, event)
                except (Rejected, ProblemError) as error:
                    rejected = error if isinstance(error, Rejected) else _from_problem(error)
                    results[item.index] = _rejected(item.index, event, rejected)
                    continue
                finally:
                    work.correlation_id = work.causation_id = None
                seen.add(item.key)
                remembered.append(
                    {
                        "tenant_id": tenant_id,
                        "source": event.source,
                        "event_id": event.id,
                        "event_type": event.type,
                        "goal_id": state.goal.id,
                        "received_at": work.now,
                    }
                )
                results[item.index] = ItemResult(
                    index=item.index,
                    id=event.id,
                    status="accepted",
                    goal_id=state.goal.id,
                    emitted=[e.id for e in work.events[before:]],
                )
            await repository.remember_ingested(remembered)
        return results


class _Book:
    """The batch's goals by id and by external ref, including those the batch creates."""

    def __init__(self, states: Sequence[GoalState]) -> None:
        self.by_id = {s.goal.id: s for s in states}
        self.by_ref = {s.goal.external_ref: s for s in states if s.goal.external_ref}

    def add(self, state: GoalState) -> None:
        self.by_id[state.goal.id] = state
        if state.goal.external_ref:
            self.by_ref[state.goal.external_ref] = state

    def find(self, ref: GoalRef) -> GoalState:
        state = self.by_ref.get(ref.external_ref) if ref.external_ref else None
        if ref.goal_id:
            state = self.by_id.get(ref.goal_id)
        if state is None:
            named = f"external_ref {ref.external_ref}" if ref.external_ref else ref.goal_id
            raise Rejected(f"goal {named} not found")
        return state


def _goal_keys(items: list[_Item]) -> tuple[set[str], set[str]]:
    refs: set[str] = set()
    ids: set[str] = set()
    for item in items:
        data = item.event.data
        ref = data.external_ref if isinstance(item.event, IngestGoalUpserted) else None
        goal = getattr(data, "goal", None)
        if isinstance(goal, GoalRef):
            ref, goal_id = goal.external_ref, goal.goal_id
            if goal_id:
                ids.add(goal_id)
        if ref:
            refs.add(ref)
    return refs, ids


def _apply_one(work: Work, book: _Book, tenant_id: str, event: Any) -> GoalState:
    """Apply one ingested event; raises (having undone its changes) when it is refused."""
    now = work.now
    if event.time is not None and event.time > now + FUTURE_TOLERANCE:
        raise Rejected(
            "time is in the future", [{"field": "time", "message": "must not be in the future"}]
        )
    at = min(event.time, now) if event.time is not None else None
    if isinstance(event, IngestGoalUpserted):
        data = event.data
        known = book.by_ref.get(data.external_ref)
        checkpoint = _Checkpoint(work, known) if known is not None else None
        try:
            state, created = apply_upsert(
                work, tenant_id, data.external_ref, data, known, prefix="data"
            )
        except BaseException:
            if checkpoint is not None:
                checkpoint.restore()
            raise
        if created:
            book.add(state)
        return state
    state = book.find(event.data.goal)
    if event.type in LIFECYCLE_ACTIONS:
        domain.transition(
            state, LIFECYCLE_ACTIONS[event.type], reason=event.data.reason, now=now, emit=work.emit
        )
    elif isinstance(event, IngestMilestoneUpserted):
        checkpoint = _Checkpoint(work, state)
        try:
            upsert_milestones(work, state, [event.data.milestone], prefix="data.milestone")
        except BaseException:
            checkpoint.restore()
            raise
    elif isinstance(event, IngestMilestoneCompleted):
        completed_at = event.data.completed_at
        if completed_at is not None and completed_at > now + FUTURE_TOLERANCE:
            raise Rejected(
                "completed_at is in the future",
                [{"field": "data.completed_at", "message": "must not be in the future"}],
            )
        milestones.finish_milestone(
            state,
            _find_milestone(state, event.data.milestone),
            "completed",
            note=event.data.evidence_note,
            at=event.data.completed_at or at,
            now=now,
            emit=work.emit,
        )
    elif isinstance(event, IngestMilestoneSkipped):
        milestones.finish_milestone(
            state,
            _find_milestone(state, event.data.milestone),
            "skipped",
            note=event.data.note,
            now=now,
            emit=work.emit,
        )
    elif isinstance(event, IngestProgressReported):
        milestones.report_progress(
            state, event.data.percent, note=event.data.note, at=at, now=now, emit=work.emit
        )
    return state


def _find_milestone(state: GoalState, ref: MilestoneRef) -> Milestone:
    found = (
        state.milestone_by_ref(ref.external_ref)
        if ref.external_ref
        else state.milestone(ref.milestone_id or "")
    )
    if found is None:
        named = f"external_ref {ref.external_ref}" if ref.external_ref else ref.milestone_id
        raise Rejected(f"milestone {named} not found on goal {state.goal.id}")
    return found


class _Checkpoint:
    """The in-memory state of one goal before an item, to undo the item if it is refused."""

    def __init__(self, work: Work, state: GoalState) -> None:
        self._work = work
        self._state = state
        self._goal = _columns(state.goal)
        self._milestones = list(state.milestones)
        self._milestone_values = {id(m): _columns(m) for m in state.milestones}
        self._participants = state.participants
        self._policy = state.policy
        self._participants_changed = state.participants_changed
        self._added = len(state.added)
        self._events = len(work.events)
        self._states = len(work.states)

    def restore(self) -> None:
        state = self._state
        _assign(state.goal, self._goal)
        state.milestones[:] = self._milestones
        for milestone in state.milestones:
            _assign(milestone, self._milestone_values[id(milestone)])
        state.participants = self._participants
        state.policy = self._policy
        state.participants_changed = self._participants_changed
        del state.added[self._added :]
        self._work.undo_since(self._events, self._states)


def _columns(row: Goal | Milestone) -> dict[str, Any]:
    mapper: Any = inspect(type(row))
    return {attr.key: getattr(row, attr.key) for attr in mapper.column_attrs}


def _assign(row: Goal | Milestone, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)


def _parse(raw: Any, tenant_id: str) -> Any:
    if not isinstance(raw, dict):
        raise Rejected("item is not a JSON object")
    try:
        event = _ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise Rejected("invalid event", _issues(error)) from None
    if event.tenantid is not None and event.tenantid != tenant_id:
        raise Rejected(
            "tenantid does not match the credential's tenant",
            [{"field": "tenantid", "message": "must be the credential's tenant"}],
        )
    return event


def _issues(error: ValidationError) -> list[dict[str, str]]:
    issues = []
    for item in error.errors(include_url=False):
        loc = list(item.get("loc", ()))
        if loc and isinstance(loc[0], str) and loc[0].startswith("ingest."):
            loc = loc[1:]  # the discriminator's tag, not a field
        if item["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            loc = ["type"]
        issues.append({"field": ".".join(map(str, loc)) or "(item)", "message": item["msg"]})
    return issues


def _from_problem(problem: ProblemError) -> Rejected:
    errors = problem.extensions.get("errors")
    return Rejected(problem.detail, errors if isinstance(errors, list) else None)


def _rejected(index: int, raw: Any, rejected: Rejected) -> ItemResult:
    event_id = getattr(raw, "id", None) or (raw.get("id") if isinstance(raw, dict) else None)
    return ItemResult(
        index=index,
        id=event_id if isinstance(event_id, str) else None,
        status="rejected",
        reason=rejected.reason,
        errors=rejected.errors,
    )
