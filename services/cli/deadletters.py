"""``dead-letters`` lists what a service's consumers gave up on; ``redrive`` sends it back.

Through each service's ``/v1/dead-letters`` API, which re-publishes the
original record to its source topic (consumers that handled it already skip
it by event id). With a tenant credential only that tenant's dead letters
are visible; minted credentials carry the ``operator`` scope and see all.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.api import CliError
from services.cli.app import app, state
from services.cli.context import fails_cleanly
from services.cli.output import emit
from services.cli.settings import SERVICES, ServiceName

COLUMNS = [
    "id",
    "topic",
    "partition",
    "offset",
    "reason",
    "event_type",
    "tenant_id",
    "status",
    "dead_lettered_at",
    "error",
]


def _service(name: str) -> ServiceName:
    for service in SERVICES:
        if service == name:
            return service
    raise typer.BadParameter(f"one of {', '.join(SERVICES)}", param_hint="--service")


ServiceOption = Annotated[
    str,
    typer.Option(help="The service whose consumers dead-lettered: goals, sessions, notifications."),
]


@app.command("dead-letters")
@fails_cleanly
def dead_letters(
    ctx: typer.Context,
    service: ServiceOption,
    status: Annotated[str | None, typer.Option(help="dead or redriven; default both.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """List dead letters, newest first."""
    name = _service(service)
    if status not in (None, "dead", "redriven"):
        raise typer.BadParameter("dead or redriven", param_hint="--status")
    cli = state(ctx)
    api = cli.api(name, (f"{name}:read", "operator"))
    items: list[dict[str, Any]] = []
    for item in api.pages("/v1/dead-letters", {"status": status, "limit": min(limit, 200)}):
        if len(items) >= limit:
            break
        items.append(item)
    emit(items, as_json=cli.as_json, rows=items, columns=COLUMNS, empty="no dead letters")


@app.command()
@fails_cleanly
def redrive(
    ctx: typer.Context,
    service: ServiceOption,
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letters to re-drive.")] = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="Every dead letter still dead (narrow with --topic/--reason)."),
    ] = False,
    topic: Annotated[
        str | None, typer.Option(help="With --all: only from this source topic.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="With --all: only with this reason.")] = None,
) -> None:
    """Publish dead letters again to their source topic, after the fix is deployed."""
    name = _service(service)
    if bool(ids) == every:
        raise CliError("give dead-letter ids, or --all (one of them)")
    if (topic or reason) and not every:
        raise CliError("--topic and --reason narrow --all")
    cli = state(ctx)
    api = cli.api(name, (f"{name}:read", f"{name}:write", "operator"))
    chosen = list(ids or ())
    if every:
        # Collect first, then re-drive: a re-driven record failing again adds new rows.
        chosen = [
            item["id"]
            for item in api.pages("/v1/dead-letters", {"status": "dead", "limit": 200})
            if (topic is None or item["topic"] == topic)
            and (reason is None or item["reason"] == reason)
        ]
    results = []
    failures = 0
    for dead_letter_id in chosen:
        try:
            item = api.post(f"/v1/dead-letters/{dead_letter_id}/redrive")
            results.append({"id": dead_letter_id, "topic": item["topic"], "result": "redriven"})
        except CliError as error:
            failures += 1
            results.append({"id": dead_letter_id, "topic": None, "result": str(error)})
    emit(
        results,
        as_json=cli.as_json,
        rows=results,
        columns=["id", "topic", "result"],
        empty="nothing to re-drive",
    )
    if failures:
        raise typer.Exit(1)
