"""The ``followthrough`` command and its global options; commands live in their own modules."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.context import Cli
from services.cli.settings import CliSettings
from shared.settings import load_settings

app = typer.Typer(
    help="Operate Followthrough: credentials, lag and backlog, failed deliveries, dead letters.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    token: Annotated[
        str | None,
        typer.Option(help="Credential to call the services with (else FOLLOWTHROUGH_TOKEN)."),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            help="Without a token: mint a five-minute credential for this tenant "
            "(needs the private key set; else FOLLOWTHROUGH_TENANT)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Service URLs come from FOLLOWTHROUGH_GOALS_URL, _SESSIONS_URL, _NOTIFICATIONS_URL."""
    cli = Cli(settings=load_settings(CliSettings), token=token, tenant=tenant, as_json=as_json)
    ctx.obj = cli
    ctx.call_on_close(cli.close)


def state(ctx: typer.Context) -> Cli:
    cli: Cli = ctx.obj
    return cli
