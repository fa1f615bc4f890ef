"""Failed deliveries, replay and routing, through the notifications operations API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from services.cli.api import CliError
from services.cli.app import app, state
from services.cli.context import fails_cleanly
from services.cli.output import emit

READ = ("notifications:read",)
WRITE = ("notifications:read", "notifications:write")
GAVE_UP = ("failed", "cancelled")


def _aware(value: datetime | None, option: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise CliError(f"{option}: give a time zone, e.g. 2026-11-25T10:00:00+00:00 or ...Z")
    return value


Since = Annotated[
    datetime | None,
    typer.Option(
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M%z"],
        help="A time with its zone, e.g. 2026-11-25T10:00:00+00:00.",
    ),
]


@app.command()
@fails_cleanly
def failed(
    ctx: typer.Context,
    since: Since = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many messages.")] = 50,
) -> None:
    """Deliveries that gave up (after their last retry), newest message first."""
    cli = state(ctx)
    api = cli.api("notifications", READ)
    rows: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    params = {"status": "failed", "since": _aware(since, "--since"), "limit": min(limit, 200)}
    for summary in api.pages("/v1/messages", params):
        if len(messages) >= limit:
            break
        detail = api.get(f"/v1/messages/{summary['id']}")
        given_up = [d for d in detail["deliveries"] if d["status"] in GAVE_UP]
        messages.append({**summary, "deliveries": given_up})
        for delivery in given_up:
            rows.append(
                {
                    "message": summary["id"],
                    "event_type": summary["event_type"],
                    "channel": delivery["channel"],
                    "target": delivery["endpoint_id"] or delivery["role"],
                    "attempts": delivery["attempts"],
                    "status": delivery["last_status_code"] or delivery["status"],
                    "last_error": delivery["last_error"],
                    "correlation_id": summary["correlation_id"],
                }
            )
    emit(
        messages,
        as_json=cli.as_json,
        rows=rows,
        columns=[
            "message",
            "event_type",
            "channel",
            "target",
            "attempts",
            "status",
            "last_error",
            "correlation_id",
        ],
        empty="no failed deliveries",
    )


@app.command()
@fails_cleanly
def replay(
    ctx: typer.Context,
    message_id: Annotated[
        str | None, typer.Argument(help="The message (event id) to send again.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Only to this endpoint (with a message id).")
    ] = None,
    since: Since = None,
) -> None:
    """Send one message again, or (--since) every webhook delivery that failed since then.

    The same webhook-id goes out again, so receivers can deduplicate. With
    --since, every enabled endpoint of the tenant recovers its failures;
    disabled endpoints are listed and skipped (enable them first).
    """
    cli = state(ctx)
    if (message_id is None) == (since is None):
        raise CliError("give a message id, or --since (one of them)")
    api = cli.api("notifications", WRITE)
    if message_id is not None:
        body = {"endpoint_id": endpoint} if endpoint else None
        accepted = api.post(f"/v1/messages/{message_id}/replay", body=body)
        emit(
            accepted,
            as_json=cli.as_json,
            rows=[{"message": message_id, "new_deliveries": len(accepted["deliveries"])}],
            columns=["message", "new_deliveries"],
        )
        return
    if endpoint is not None:
        raise CliError("--endpoint goes with a message id; --since covers every endpoint")
    moment = _aware(since, "--since")
    assert moment is not None
    results = []
    for item in api.pages("/v1/endpoints", {"limit": 200}):
        if not item["enabled"]:
            results.append(
                {"endpoint": item["id"], "url": item["url"], "recovered": "disabled: skipped"}
            )
            continue
        accepted = api.post(
            f"/v1/endpoints/{item['id']}/recover", params={"since": moment.isoformat()}
        )
        results.append(
            {"endpoint": item["id"], "url": item["url"], "recovered": len(accepted["deliveries"])}
        )
    emit(
        results,
        as_json=cli.as_json,
        rows=results,
        columns=["endpoint", "url", "recovered"],
        empty="the tenant has no endpoints",
    )


@app.command()
@fails_cleanly
def routing(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The domain event's id.")],
) -> None:
    """Which targets an event matched, and why the others did not."""
    cli = state(ctx)
    answer = cli.api("notifications", READ).get(f"/v1/events/{event_id}/routing")
    rows = [
        {
            "channel": d["channel"],
            "target": d["target"],
            "role": d.get("role"),
            "matched": "yes" if d["matched"] else "no",
            "reason": d["reason"],
        }
        for d in answer["decisions"]
    ]
    emit(
        answer,
        as_json=cli.as_json,
        rows=rows,
        columns=["channel", "target", "role", "matched", "reason"],
        title=f"{answer['event_type']} {answer['event_id']}",
        empty="no endpoint or email rule of the tenant could take it (unrouted)",
    )
