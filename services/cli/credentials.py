"""``token`` mints a tenant credential; ``revoke`` makes every service refuse one.

Revoking publishes ``credential.revoked`` on the control topic, which every
replica of every service follows (``shared.auth.revocation``): no service is
called, and one that is down refuses the credential as soon as it is back.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
import typer

from services.cli.api import CliError
from services.cli.app import app, state
from services.cli.context import fails_cleanly
from services.cli.output import emit
from services.cli.settings import CliSettings
from shared.auth.setup import build_issuer
from shared.auth.tokens import TENANT_PATTERN, TENANT_SCOPES
from shared.events import build_event
from shared.events.catalog.control import (
    CONTROL_TOPIC,
    CredentialRevoked,
    CredentialRevokedData,
)
from shared.kafka.config import CONTENT_TYPE
from shared.kafka.producer import EventProducer, OutboundRecord
from shared.kafka.topics import ensure_topics

SOURCE = "/followthrough/cli"


@app.command()
@fails_cleanly
def token(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="Tenant the credential acts for.")],
    scopes: Annotated[
        str,
        typer.Option(help="Space-separated scopes; default all a tenant has (not operator)."),
    ] = " ".join(TENANT_SCOPES),
    ttl_days: Annotated[float, typer.Option(help="Days until it expires.", min=0.001)] = 30,
) -> None:
    """Mint a tenant credential signed with the deployment's newest private key."""
    settings = state(ctx).settings
    try:
        issuer = build_issuer(settings)
        credential = issuer.mint(tenant, scopes=scopes.split(), ttl=timedelta(days=ttl_days))
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(credential)


@app.command()
@fails_cleanly
def revoke(
    ctx: typer.Context,
    credential: Annotated[
        str | None,
        typer.Argument(
            help="The credential to revoke; its id, tenant and expiry are read from it."
        ),
    ] = None,
    token_id: Annotated[
        str | None,
        typer.Option("--id", help="Revoke by credential id (jti) instead; needs --tenant."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Kept with the revocation.")] = None,
) -> None:
    """Make every service refuse a credential, within seconds, without calling any of them."""
    cli = state(ctx)
    if (credential is None) == (token_id is None):
        raise CliError("give the credential, or --id with --tenant (one of them)")
    expires_at: datetime | None = None
    if credential is not None:
        token_id, tenant, expires_at = _read(credential)
    else:
        given = cli.tenant or cli.settings.tenant
        if not given or not TENANT_PATTERN.match(given):
            raise CliError("--id needs the credential's tenant: --tenant (or FOLLOWTHROUGH_TENANT)")
        tenant = given
    assert token_id is not None
    if not 0 < len(token_id) <= 128:
        raise CliError("--id: 1 to 128 characters")
    if reason is not None and len(reason) > 200:
        raise CliError("--reason: at most 200 characters")
    event = build_event(
        CredentialRevoked,
        CredentialRevokedData(token_id=token_id, expires_at=expires_at, reason=reason),
        tenant_id=tenant,
        partition_key=token_id,
        source=SOURCE,
        subject=f"credentials/{token_id}",
    )
    asyncio.run(_publish(cli.settings, event))
    emit(
        {"token_id": token_id, "tenant_id": tenant, "event_id": event.id},
        as_json=cli.as_json,
        rows=[{"revoked": token_id, "tenant": tenant, "expires_at": expires_at}],
        columns=["revoked", "tenant", "expires_at"],
    )


def _read(credential: str) -> tuple[str, str, datetime | None]:
    """Id, tenant and expiry of a credential, read without verifying it (revoking is safe)."""
    try:
        claims: dict[str, Any] = jwt.decode(credential, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise CliError("that is not a credential (a JWT); use --id for a credential id") from None
    token_id, tenant, expires = claims.get("jti"), claims.get("tenant"), claims.get("exp")
    if not isinstance(token_id, str) or not isinstance(tenant, str):
        raise CliError("the credential carries no jti or tenant")
    if not TENANT_PATTERN.match(tenant):
        raise CliError("the credential's tenant is malformed")
    expires_at = datetime.fromtimestamp(expires, UTC) if isinstance(expires, int) else None
    return token_id, tenant, expires_at


async def _publish(settings: CliSettings, event: CredentialRevoked) -> None:
    topic = settings.topic(CONTROL_TOPIC)
    producer = EventProducer(settings, client_id="followthrough-cli")
    try:
        if settings.kafka_create_topics:
            await asyncio.wait_for(ensure_topics(settings, [topic]), 15)
        await asyncio.wait_for(
            producer.send_and_wait(
                OutboundRecord(
                    topic=topic,
                    value=event.to_json(),
                    key=event.partitionkey.encode(),
                    headers=[
                        ("content-type", CONTENT_TYPE),
                        ("correlation-id", event.correlationid.encode()),
                    ],
                )
            ),
            30,
        )
    except Exception as error:  # any broker trouble: say so, revoke nothing
        raise CliError(
            f"the broker at {settings.kafka_bootstrap_servers} did not take the revocation "
            f"({error!r}); nothing was revoked"
        ) from None
    finally:
        await producer.stop()
