"""Egress: every connection the browser makes passes one SOCKS5 gateway that applies the probe's address policy.

Chromium is told to resolve no name itself and to send every connection of a
scan's context to its gateway (pages, redirect hops, subresources, iframes,
fetch/XHR, websockets alike: SOCKS carries them all). The gateway resolves
each name once (scanner_project.outbound.addresses), refuses it unless every address is
allowed, and connects to exactly the address it checked: DNS rebinding
cannot get past the check. Name resolution counts against the scan's deadline.

It is a few dozen lines of asyncio because what it must do, connect to the
address that was checked and nothing else, is the part a general proxy
library would have to be bent to; SOCKS5 CONNECT itself is RFC 1928's simplest
case (no authentication, no BIND or UDP, which Chromium does not use).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import struct
import time
from functools import partial

from scanner_project.outbound import addresses

logger = logging.getLogger("schedules.scans")

_HOSTNAME = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")
# RFC 1928 reply codes.
_OK, _FAILURE, _NOT_ALLOWED, _HOST_UNREACHABLE, _REFUSED, _COMMAND_UNSUPPORTED = 0, 1, 2, 4, 5, 7
_PIPE_CHUNK = 64 * 1024


class Gateway:
    """One listener on 127.0.0.1 for one scan: what it refused and what it
    reached is that scan's own, and closing it ends every tunnel it opened."""

    def __init__(self, *, allow_private: bool, allowed_networks: tuple, ends_at: float,
                 connect_timeout: float = 10.0) -> None:
        self.allow_private = allow_private
        self.allowed_networks = allowed_networks
        self.ends_at = ends_at  # time.monotonic() at which the scan's deadline passes
        self.connect_timeout = connect_timeout
        self.refused: dict[str, str] = {}  # host -> why
        self.reached: set[str] = set()
        self._server: asyncio.base_events.Server | None = None
        self._tunnels: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"socks5://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._tunnels):
            writer.transport.abort()
        self._tunnels.clear()

    def remaining(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    # --- one connection ----------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tunnels.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            host, port = await asyncio.wait_for(self._handshake(reader, writer), timeout=10)
            if host is None:
                return
            upstream_reader, upstream = await self._connect(host, port, writer)
            if upstream is None:
                return
            self._tunnels.add(upstream)
            await asyncio.gather(_pipe(reader, upstream), _pipe(upstream_reader, writer))
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            for end in (writer, upstream):
                if end is not None:
                    self._tunnels.discard(end)
                    end.transport.abort()

    async def _handshake(self, reader, writer) -> tuple[str | None, int]:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != 5 or 0 not in methods:
            writer.write(b"\x05\xff")
            return None, 0
        writer.write(b"\x05\x00")
        _version, command, _reserved, kind = await reader.readexactly(4)
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        elif kind == 3:
            length = (await reader.readexactly(1))[0]
            host = (await reader.readexactly(length)).decode("ascii", "replace")
        else:
            await self._reply(writer, _COMMAND_UNSUPPORTED)
            return None, 0
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:  # CONNECT only
            await self._reply(writer, _COMMAND_UNSUPPORTED)
            return None, 0
        return host.lower().rstrip("."), port

    async def _connect(self, host: str, port: int, writer):
        try:
            answers = await self._checked(host, port)
        except addresses.AddressRefused as exc:
            self.refused.setdefault(host, str(exc))
            logger.info("Scan gateway refused %s:%s: %s", host, port, exc)
            await self._reply(writer, _NOT_ALLOWED)
            return None, None
        last_error: Exception | None = None
        for _family, sockaddr in answers:
            try:
                # An address literal: open_connection resolves nothing more.
                upstream_reader, upstream = await asyncio.wait_for(
                    asyncio.open_connection(sockaddr[0], sockaddr[1]),
                    timeout=max(0.01, min(self.connect_timeout, self.remaining())))
            except (OSError, asyncio.TimeoutError) as exc:
                last_error = exc
                continue
            self.reached.add(host)
            await self._reply(writer, _OK)
            return upstream_reader, upstream
        await self._reply(writer, _REFUSED if isinstance(last_error, ConnectionRefusedError) else _HOST_UNREACHABLE)
        return None, None

    async def _checked(self, host: str, port: int) -> list[tuple[int, tuple]]:
        if not _HOSTNAME.match(host) and not _is_address(host):
            raise addresses.AddressRefused(f"refusing the host {host[:80]!r}: not a host name")
        resolve = partial(addresses.checked_addresses, host, port, allow_private=self.allow_private,
                          allowed_networks=self.allowed_networks)
        try:
            return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, resolve),
                                          timeout=max(0.01, self.remaining()))
        except asyncio.TimeoutError:
            raise addresses.AddressRefused(f"resolving {host} did not finish within the scan's deadline") from None

    @staticmethod
    async def _reply(writer, code: int) -> None:
        writer.write(bytes((5, code, 0, 1, 0, 0, 0, 0, 0, 0)))
        await writer.drain()


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_PIPE_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        if writer.can_write_eof():
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass
