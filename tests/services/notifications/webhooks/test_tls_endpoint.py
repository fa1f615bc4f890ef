"""HTTPS endpoints: the connection is pinned to the address the guard checked, while TLS keeps
the endpoint's own name for SNI and certificate verification, and Host stays the name."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.services.notifications.conftest import HarnessFactory
from tests.services.notifications.webhooks.tls import make_certificate

# About HTTP and the guard, not the database: once is enough.
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)

NAME = "hooks.example.test"


@contextlib.asynccontextmanager
async def tls_receiver(cert: Path, key: Path) -> AsyncIterator[dict[str, Any]]:
    seen: dict[str, Any] = {"sni": [], "requests": []}
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = {
                k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen["requests"].append((headers, body))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    seen["port"] = server.sockets[0].getsockname()[1]
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


@SQLITE_ONLY
async def test_https_endpoint_keeps_its_name_for_sni_and_host(
    harness: HarnessFactory, tmp_path: Path
) -> None:
    cert, key = make_certificate(tmp_path, dns=(NAME,))

    async def resolver(host: str, port: int) -> list[str]:
        assert host == NAME
        return ["127.0.0.1"]

    async with (
        tls_receiver(cert, key) as seen,
        harness(resolver=resolver, webhook_allow_http=False, webhook_ca_file=cert) as h,
    ):
        endpoint_id, secret = await h.create_endpoint(f"https://{NAME}:{seen['port']}/hook")
        sent = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
        message = await h.wait_message(
            sent["message_id"], lambda m: m["deliveries"][0]["status"] == "succeeded"
        )
    ((headers, body),) = seen["requests"]
    assert seen["sni"] == [NAME]
    assert headers["host"] == f"{NAME}:{seen['port']}"
    Webhook(secret).verify(body, headers)
    assert message["deliveries"][0]["attempt_log"][0]["status_code"] == 200


@SQLITE_ONLY
async def test_certificate_for_another_name_fails(harness: HarnessFactory, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, dns=("someone-else.example.test",))

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with (
        tls_receiver(cert, key) as seen,
        harness(resolver=resolver, webhook_ca_file=cert, webhook_retry_schedule_seconds=[0.0]) as h,
    ):
        endpoint_id, _ = await h.create_endpoint(f"https://{NAME}:{seen['port']}/hook")
        sent = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
        message = await h.wait_message(
            sent["message_id"], lambda m: m["deliveries"][0]["status"] == "failed"
        )
    assert seen["requests"] == []
    assert "CERTIFICATE_VERIFY_FAILED" in message["deliveries"][0]["last_error"]
