"""Sending email over SMTP with aiosmtplib, reusing connections.

A small pool of SMTP sessions stays open between emails (opening one costs
a TCP handshake, a greeting, EHLO, maybe STARTTLS and AUTH), so a burst of a
thousand emails travels over a handful of connections. A session the server
closed meanwhile is reopened once, transparently. Counters of connections
opened and messages sent show the reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

import aiosmtplib

from services.notifications.settings import NotificationsSettings
from shared.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpOutcome:
    succeeded: bool
    code: int | None
    error: str | None
    permanent: bool = False


class SmtpPool:
    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._slots = asyncio.Semaphore(settings.smtp_pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self.connections_opened = 0
        self.messages_sent = 0

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self._settings.smtp_ca_file) if self._settings.smtp_ca_file else None
        )
        if not self._settings.smtp_validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        security = s.smtp_security
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            tls_context=self._tls_context() if security != "plain" else None,
            timeout=s.smtp_timeout_seconds,
        )
        await client.connect()
        if s.smtp_username and s.smtp_password is not None:
            await client.login(s.smtp_username, s.smtp_password.get_secret_value())
        self.connections_opened += 1
        log.info(
            "email.smtp.connected",
            host=s.smtp_host,
            port=s.smtp_port,
            security=security,
            connections_opened=self.connections_opened,
        )
        return client

    async def send(self, message: EmailMessage) -> SmtpOutcome:
        # Flattened with the message's own policy: aiosmtplib's would fold (and so encode)
        # a long List-Unsubscribe URL at 78 characters.
        data = message.as_bytes(policy=message.policy)
        sender = parseaddr(str(message["From"]))[1]
        recipients = [address for _, address in getaddresses(message.get_all("To", []))]
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                try:
                    await client.sendmail(sender, recipients, data)
                except aiosmtplib.SMTPServerDisconnected:
                    client = await self._connect()
                    await client.sendmail(sender, recipients, data)
            except aiosmtplib.SMTPResponseException as error:
                # A rejected message leaves the session usable, unless the server hung up.
                if client is not None and client.is_connected:
                    with contextlib.suppress(aiosmtplib.SMTPException):
                        await client.rset()
                    self._idle.append(client)
                return SmtpOutcome(
                    False,
                    error.code,
                    f"SMTP {error.code}: {error.message}"[:500],
                    error.code >= 500,
                )
            except aiosmtplib.SMTPRecipientsRefused as error:
                codes = [response.code for response in error.recipients]
                code = codes[0] if codes else None
                await self._discard(client)
                return SmtpOutcome(
                    False, code, f"recipient refused ({code})", code is not None and code >= 500
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                await self._discard(client)
                return SmtpOutcome(False, None, f"{type(error).__name__}: {error}"[:500])
            self._idle.append(client)
            self.messages_sent += 1
            return SmtpOutcome(True, 250, None)

    async def _discard(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), 2)
            with contextlib.suppress(Exception):
                client.close()
        log.info(
            "email.smtp.closed",
            connections_opened=self.connections_opened,
            messages_sent=self.messages_sent,
        )
