"""What every command shares: settings, the credential to call with, the output format."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ParamSpec, TypeVar

import typer

from services.cli.api import CliError, ServiceApi
from services.cli.settings import CliSettings, ServiceName
from shared.auth.setup import build_issuer

MINTED_TTL = timedelta(minutes=5)


@dataclass
class Cli:
    settings: CliSettings
    token: str | None = None
    tenant: str | None = None
    as_json: bool = False
    _apis: list[ServiceApi] = field(default_factory=list)

    def credential(self, scopes: Sequence[str]) -> str:
        """The given token, else a five-minute credential with just ``scopes`` for ``tenant``."""
        if self.token:
            return self.token
        if self.settings.token is not None and self.settings.token.get_secret_value():
            return self.settings.token.get_secret_value()
        tenant = self.tenant or self.settings.tenant
        if not tenant:
            raise CliError(
                "no credential: give --token (or FOLLOWTHROUGH_TOKEN), or --tenant "
                "(or FOLLOWTHROUGH_TENANT) with the private key set to mint one"
            )
        try:
            issuer = build_issuer(self.settings)
            return issuer.mint(tenant, scopes=scopes, ttl=MINTED_TTL, subject="operator-cli")
        except (ValueError, OSError) as error:
            raise CliError(f"cannot mint a credential for {tenant}: {error}") from None

    def api(
        self, service: ServiceName, scopes: Sequence[str], url: str | None = None
    ) -> ServiceApi:
        """A client of ``service`` (its first URL unless given) calling with ``scopes``."""
        base = url or self.settings.urls(service)[0]
        credential = functools.cache(lambda: self.credential(scopes))  # mint once per client
        api = ServiceApi(service, base, credential, timeout=self.settings.http_timeout_seconds)
        self._apis.append(api)
        return api

    def close(self) -> None:
        for api in self._apis:
            api.close()
        self._apis.clear()


P = ParamSpec("P")
R = TypeVar("R")


def fails_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a CliError into ``error: ...`` on stderr and exit status 1, without a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None

    return run
