"""The SMTP sink keeps every mail it receives, as received, and logs one line per mail."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import aiosmtplib
import structlog

from shared.devstack.processes import free_port
from shared.devstack.smtp_sink import SmtpSink


async def test_each_mail_is_kept_in_its_own_file_and_logged_without_its_body(
    tmp_path: Path,
) -> None:
    sink = SmtpSink(port=free_port(), directory=tmp_path / "mail")
    sink.start()
    try:
        with structlog.testing.capture_logs() as logs:
            for number in (1, 2):
                message = EmailMessage()
                message["From"] = "followthrough@example.com"
                message["To"] = "ada@example.com"
                message["Subject"] = f"Check-in {number} is due"
                message["Message-ID"] = f"<m{number}@example.com>"
                message.set_content(f"Secret body {number}")
                await aiosmtplib.send(message, hostname="127.0.0.1", port=sink.port)
    finally:
        sink.stop()

    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    kept = BytesParser().parsebytes(files[0].read_bytes())
    assert kept["X-Sink-Mail-From"] == "followthrough@example.com"
    assert kept["X-Sink-Rcpt-To"] == "ada@example.com"
    assert kept["Subject"] == "Check-in 1 is due"
    assert str(kept.get_payload()).strip() == "Secret body 1"
    assert [m["subject"] for m in sink.messages] == ["Check-in 1 is due", "Check-in 2 is due"]
    received = [line for line in logs if line["event"] == "smtp.mail.received"]
    assert [line["message_id"] for line in received] == ["<m1@example.com>", "<m2@example.com>"]
    assert all("Secret body" not in str(line) for line in received)
    assert received[0]["file"] == str(files[0])
