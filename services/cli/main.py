"""The operator CLI. ``followthrough token`` mints tenant credentials."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from services.cli.settings import CliSettings
from shared.auth.setup import build_issuer
from shared.auth.tokens import TENANT_SCOPES
from shared.settings import load_settings

app = typer.Typer(help="Operate Followthrough.", no_args_is_help=True, add_completion=False)


@app.callback()
def _root() -> None:
    """Followthrough operator commands."""


@app.command()
def token(
    tenant: Annotated[str, typer.Option(help="Tenant the credential acts for.")],
    scopes: Annotated[
        str, typer.Option(help="Space-separated scopes; default all a tenant has (no operator).")
    ] = " ".join(TENANT_SCOPES),
    ttl_days: Annotated[float, typer.Option(help="Days until it expires.", min=0.001)] = 30,
) -> None:
    """Mint a tenant credential signed with the deployment's newest private key."""
    settings = load_settings(CliSettings)
    issuer = build_issuer(settings)
    try:
        credential = issuer.mint(tenant, scopes=scopes.split(), ttl=timedelta(days=ttl_days))
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(credential)


if __name__ == "__main__":
    app()
