"""SMTP transport against real aiosmtpd servers: plain, STARTTLS and implicit TLS with AUTH,
and connections reused across a burst of emails."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notifications.email.smtp import SmtpPool
from services.notifications.settings import NotificationsSettings
from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import MailKeeper
from tests.services.notifications.webhooks.tls import make_certificate


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"), ips=("127.0.0.1",))


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok)


@contextlib.contextmanager
def smtp_server(mode: str, certificate: tuple[Path, Path]) -> Iterator[tuple[MailKeeper, int]]:
    keeper = MailKeeper(None)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    port = free_port()
    options: dict[str, Any] = {"hostname": "127.0.0.1", "port": port, "ready_timeout": 10}
    if mode == "starttls":
        options.update(
            tls_context=context,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
        )
    elif mode == "tls":
        options.update(
            ssl_context=context,
            authenticator=authenticator,
            auth_required=True,
            # aiosmtpd cannot tell that implicit TLS is TLS; the session is encrypted here.
            auth_require_tls=False,
        )

    counting = keeper
    controller = Controller(counting, **options)
    controller.start()
    try:
        yield counting, port
    finally:
        controller.stop()


def mail(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Followthrough <notifications@followthrough.local>"
    message["To"] = f"Person {n} <person{n}@example.com>"
    message["Subject"] = f"Hello {n}"
    message.set_content("hi")
    return message


# aiosmtpd cannot tell that implicit TLS is TLS, and warns when AUTH is offered on it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["plain", "starttls", "tls"])
async def test_modes_auth_and_connection_reuse(
    mode: str, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    with smtp_server(mode, certificate) as (keeper, port):
        credentials: dict[str, Any] = (
            {} if mode == "plain" else {"smtp_username": "mailer", "smtp_password": "s3cret"}
        )
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "smtp_port": port,
            "smtp_security": mode,
            "smtp_ca_file": certificate[0],
            "smtp_pool_size": 2,
            **credentials,
        }
        settings = NotificationsSettings(_env_file=None, **values)
        pool = SmtpPool(settings)
        outcomes = await asyncio.gather(*(pool.send(mail(n)) for n in range(20)))
        await pool.close()
    assert all(o.succeeded for o in outcomes), outcomes
    assert sorted(m["rcpt_tos"][0] for m in keeper.messages) == sorted(
        f"person{n}@example.com" for n in range(20)
    )
    assert pool.messages_sent == 20
    assert pool.connections_opened <= 2  # 20 emails over at most two SMTP sessions


async def test_wrong_password_is_a_failed_attempt(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    with smtp_server("starttls", certificate) as (keeper, port):
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "smtp_port": port,
            "smtp_security": "starttls",
            "smtp_ca_file": certificate[0],
            "smtp_username": "mailer",
            "smtp_password": "wrong",
            "smtp_timeout_seconds": 3,
        }
        settings = NotificationsSettings(_env_file=None, **values)
        pool = SmtpPool(settings)
        outcome = await pool.send(mail(1))
        await pool.close()
    assert not outcome.succeeded
    assert outcome.error
    assert keeper.messages == []
