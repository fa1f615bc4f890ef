"""A local SMTP server that keeps every mail it receives, for ``make run`` and tests.

Each message is written to ``<dir>/<timestamp>-<n>.eml`` exactly as received
(plus the envelope in X-Sink-* headers at the top), and one log line is
written per mail, without its body.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import time
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shared.logs import configure_logging, get_logger

log = get_logger("smtp_sink")


class MailKeeper:
    """aiosmtpd handler: stores each message to a file and remembers it in memory."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.messages: list[dict[str, Any]] = []
        self._counter = itertools.count(1)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        headers = BytesHeaderParser().parsebytes(content)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "content": content,
            "subject": headers.get("Subject", ""),
            "message_id": headers.get("Message-ID", ""),
        }
        self.messages.append(record)
        path = None
        if self.directory is not None:
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self._counter):06d}.eml"
            path = self.directory / name
            prefix = (
                f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
                f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
            ).encode()
            path.write_bytes(prefix + content)
        log.info(
            "smtp.mail.received",
            mail_from=envelope.mail_from,
            rcpt_to=list(envelope.rcpt_tos),
            subject=record["subject"],
            message_id=record["message_id"],
            size=len(content),
            file=str(path) if path else None,
        )
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, directory: Path | None = None):
        self.keeper = MailKeeper(directory)
        self._controller = Controller(
            self.keeper, hostname=host, port=port, ready_timeout=10, auth_require_tls=False
        )

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.keeper.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink that keeps every mail.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".data/mail"))
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    args = parser.parse_args()
    configure_logging("smtp-sink", fmt=args.log_format)
    sink = SmtpSink(host=args.host, port=args.port, directory=args.dir)
    sink.start()
    log.info("smtp.sink.started", host=args.host, port=sink.port, directory=str(args.dir))

    async def wait_for_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(wait_for_signal())
    sink.stop()
    log.info("smtp.sink.stopped")


if __name__ == "__main__":
    main()
