"""Faults a test can inject from outside a service: a TCP proxy that cuts the line.

Point a service at the proxy instead of its database (or broker) and the
test decides when the far side "goes away": ``cut()`` aborts every open
connection and refuses new ones, as a crashed or unreachable server would;
``restore()`` listens again on the same port. ``cut_at_commit()`` cuts at the
exact moment a write transaction tries to commit (a PostgreSQL ``COMMIT``
after enough statements), so a test can check that nothing of it was kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

from shared.devstack.processes import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._commit_after: int | None = None
        self.tripped = asyncio.Event()
        """Set when ``cut_at_commit`` fired."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def restore(self) -> None:
        """Listen again (after ``cut``)."""
        if self._server is None:
            await self.start()

    async def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    def cut_at_commit(self, *, after_bytes: int) -> None:
        """Cut everything when a connection that sent at least ``after_bytes`` since its
        last ``BEGIN`` sends ``COMMIT`` (the ``COMMIT`` itself never reaches the server)."""
        self._commit_after = after_bytes
        self.tripped.clear()

    async def close(self) -> None:
        await self.cut()
        for task in list(self._links):
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(client_w)
            return
        self._writers.update((client_w, server_w))
        upstream = asyncio.create_task(self._pump(client_r, server_w, watch=True))
        downstream = asyncio.create_task(self._pump(server_r, client_w, watch=False))
        for task in (upstream, downstream):
            self._links.add(task)
            task.add_done_callback(self._links.discard)
        await asyncio.wait({upstream, downstream}, return_when=asyncio.FIRST_COMPLETED)
        for writer in (client_w, server_w):
            self._writers.discard(writer)
            writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, watch: bool
    ) -> None:
        since_begin = 0
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if watch:
                    if b"BEGIN" in chunk:
                        since_begin = 0
                    since_begin += len(chunk)
                    limit = self._commit_after
                    if limit is not None and b"COMMIT" in chunk and since_begin >= limit:
                        self._commit_after = None
                        self.tripped.set()
                        await self.cut()
                        return
                writer.write(chunk)
                await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a dead peer's kernel would answer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.asynccontextmanager
async def tcp_proxy(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
