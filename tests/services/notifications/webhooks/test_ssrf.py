"""The SSRF guard: every refused target is refused before any connection is opened.

A real TCP listener on loopback counts connections, so "refused" provably
means "never connected"; names are resolved by a fake resolver where the
test needs DNS to lie (a private answer, or rebinding between registration
and delivery). No traffic ever leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.notifications.webhooks.ssrf import (
    AddressPolicy,
    BlockedAddressError,
    Guard,
    literal_address,
)
from tests.services.notifications.conftest import HarnessFactory

# About HTTP and the guard, not the database: once is enough.
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)

REFUSED = [
    "127.0.0.1",
    "127.1",
    "0177.0.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "198.51.100.7",
    "203.0.113.9",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::ffff:169.254.169.254]",
    "[::127.0.0.1]",
    "[64:ff9b::a00:1]",
    "[2002:7f00:1::]",
    "[fe80::1]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[ff02::1]",
    "[2001:db8::1]",
]


@pytest.mark.parametrize("host", REFUSED)
async def test_every_non_public_spelling_is_refused(host: str) -> None:
    guard = Guard(AddressPolicy())
    with pytest.raises(BlockedAddressError):
        await guard.resolve(host, 443)


def test_numeric_spellings_decode_to_loopback() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    for spelling in ("2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1"):
        assert literal_address(spelling) == loopback


async def test_public_addresses_pass_and_the_allowlist_opens_loopback() -> None:
    assert await Guard(AddressPolicy()).resolve("93.184.216.34", 443)
    assert await Guard(AddressPolicy()).resolve("[2606:2800:220:1::1]", 443)
    allowed = Guard(AddressPolicy(["127.0.0.1/32"]))
    assert await allowed.resolve("127.0.0.1", 80)
    with pytest.raises(BlockedAddressError):
        await allowed.resolve("127.0.0.2", 80)
    with pytest.raises(BlockedAddressError):  # the mapped form is not what the operator allowed
        await allowed.resolve("[::ffff:127.0.0.1]", 80)


async def test_a_name_is_refused_if_any_of_its_addresses_is() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(BlockedAddressError, match=r"10\.1\.2\.3"):
        await Guard(AddressPolicy(), resolver).resolve("mixed.example.test", 443)


class Listener:
    """A loopback TCP server that only counts the connections it gets."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@contextlib.asynccontextmanager
async def listening() -> AsyncIterator[Listener]:
    listener = Listener()
    server = await asyncio.start_server(listener._handle, "127.0.0.1", 0)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        await server.wait_closed()


def problem_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["errors"][0]["field"])


@SQLITE_ONLY
async def test_registration_refuses_without_connecting(harness: HarnessFactory) -> None:
    hosts = {"internal.example.test": ["10.0.0.1"], "localhost": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return hosts[host]

    async with (
        listening() as listener,
        harness(resolver=resolver, webhook_allowed_networks=[]) as h,
    ):
        port = listener.port
        for url in (
            f"http://127.0.0.1:{port}/hook",
            f"http://2130706433:{port}/hook",
            f"http://0x7f000001:{port}/hook",
            f"http://[::1]:{port}/hook",
            f"http://[::ffff:127.0.0.1]:{port}/hook",
            f"http://localhost:{port}/hook",
            "http://internal.example.test/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data/",
        ):
            response = await h.http.post("/v1/endpoints", headers=h.headers, json={"url": url})
            assert problem_field(response) == "body.url", url
    assert listener.connections == 0


@SQLITE_ONLY
async def test_https_is_required_unless_allowed(harness: HarnessFactory) -> None:
    async with harness(webhook_allow_http=False) as h:
        response = await h.http.post(
            "/v1/endpoints", headers=h.headers, json={"url": "http://93.184.216.34/hook"}
        )
        assert problem_field(response) == "body.url"
        assert "https" in response.json()["detail"]


@SQLITE_ONLY
async def test_rebinding_at_delivery_is_refused_without_connecting(
    harness: HarnessFactory,
) -> None:
    answers = {"hooks.example.test": ["93.184.216.34"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    async with (
        listening() as listener,
        harness(
            resolver=resolver, webhook_allowed_networks=[], webhook_retry_schedule_seconds=[0.0]
        ) as h,
    ):
        endpoint_id, _ = await h.create_endpoint(f"http://hooks.example.test:{listener.port}/")
        answers["hooks.example.test"] = ["127.0.0.1"]  # the name now points inside
        sent = (await h.http.post(f"/v1/endpoints/{endpoint_id}/test", headers=h.headers)).json()
        message = await h.wait_message(
            sent["message_id"], lambda m: m["deliveries"][0]["status"] == "failed"
        )
    (attempt,) = message["deliveries"][0]["attempt_log"]
    assert attempt["status_code"] is None
    assert "127.0.0.1" in attempt["error"]
    assert "refused" in attempt["error"]
    assert listener.connections == 0
