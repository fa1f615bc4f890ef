"""The SSRF guard: webhooks reach only public addresses, unless the operator allows more.

A URL's host is resolved here, every address it resolves to is checked, and
the connection is then opened to a checked address only (the network backend
below is what httpx connects through), so a name that resolves to a public
address at registration and to 127.0.0.1 a second later (DNS rebinding) is
refused at the moment of connecting. TLS keeps the original name for SNI and
certificate checks because httpx still sees the hostname; only the socket is
pinned.

Host strings are never trusted to mean what they look like: the decimal,
hex and octal IPv4 spellings (``2130706433``, ``0x7f000001``, ``0177.1``) are
decoded to the address they denote, and IPv6 forms that embed an IPv4
address (mapped, compatible, 6to4, NAT64) are checked as that address too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import certifi
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name to address strings; injectable so tests can play DNS."""

_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo etc.)
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class BlockedAddressError(Exception):
    """The target is not one webhooks may reach; nothing was sent."""


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Decode every spelling ``inet_aton`` accepts: 1 to 4 parts, decimal, hex or octal."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or any(not part for part in parts):
        return None
    numbers: list[int] = []
    for part in parts:
        text = part.lower()
        try:
            if text.startswith("0x"):
                value = int(text[2:] or "0", 16)
            elif len(text) > 1 and text.startswith("0"):
                value = int(text[1:], 8)
            else:
                value = int(text, 10)
        except ValueError:
            return None
        numbers.append(value)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (5 - len(numbers)) + last
    return ipaddress.IPv4Address(value)


def literal_address(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, in any spelling, or None for a name."""
    bare = host.strip("[]")
    if "%" in bare:  # zone index (fe80::1%eth0)
        bare = bare.split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return parse_ipv4_literal(bare)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why this address is not public, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = blocked_reason(inner)
            if reason:
                return f"embeds {inner}: {reason}"
    for network in _BLOCKED:
        if address.version == network.version and address in network:
            return f"in {network}"
    if address.is_multicast or address.is_reserved or not address.is_global:
        return "not a public address"
    return None


class AddressPolicy:
    """Decides whether an address may be connected to: public, or in the operator's allowlist."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._allowed = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in allowed)

    def check(self, address: IPAddress) -> None:
        for network in self._allowed:
            if address.version == network.version and address in network:
                return
        reason = blocked_reason(address)
        if reason:
            raise BlockedAddressError(f"address {address} is refused ({reason})")


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Guard:
    """Resolves a host and checks every address; the one place SSRF decisions are made."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self._resolver = resolver

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host``, all checked; raises if any is refused or none exist."""
        literal = literal_address(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            try:
                found = await self._resolver(host.rstrip("."), port)
            except (OSError, UnicodeError) as error:
                raise BlockedAddressError(f"host {host!r} does not resolve ({error})") from None
            addresses = []
            for text in found:
                address = literal_address(text)
                if address is None:
                    raise BlockedAddressError(f"host {host!r} resolved to {text!r}")
                addresses.append(address)
            if not addresses:
                raise BlockedAddressError(f"host {host!r} does not resolve")
        # Refuse when any address is refused: a name that mixes public and private
        # answers is exactly what a rebinding attack looks like.
        for address in addresses:
            self.policy.check(address)
        return addresses

    async def check_url(self, url: str) -> None:
        parsed = httpx.URL(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        await self.resolve(parsed.host, port)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the guard passed."""

    def __init__(self, guard: Guard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._guard = guard
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._guard.resolve(host, port)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool rebuilt on the guarded backend.

    httpx does not take a network backend itself, so the pool it built is
    replaced by an identical one that connects through :class:`GuardedBackend`.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        limits: httpx.Limits,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        ssl_context = ssl_context or trust_store(ca_file)
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )


def trust_store(ca_file: str | None = None) -> ssl.SSLContext:
    """httpx's own trust store (certifi), plus the operator's CA where one is given.

    Loading it costs milliseconds; build it once and share it between transports.
    """
    ssl_context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        ssl_context.load_verify_locations(cafile=ca_file)
    return ssl_context


def allowed_schemes(allow_http: bool) -> Sequence[str]:
    return ("https", "http") if allow_http else ("https",)
