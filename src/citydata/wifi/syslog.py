"""Syslog-style listeners: UDP datagrams (one or more lines each) and TCP streams of newline-framed lines
(RFC 6587 non-transparent framing; octet-counted frames ``<len> <msg>`` are read too). Lines are batched for a
moment and handed to ``WifiService.ingest_lines`` with the configured format (``syslog`` detects it per line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from citydata.wifi.service import WifiService

log = logging.getLogger(__name__)
BATCH_LINES = 2000
BATCH_WAIT_S = 0.2
MAX_LINE = 8192
_OCTET = re.compile(rb"^(\d{1,5}) ")


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, listener: SyslogListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: Any) -> None:
        for line in data[: MAX_LINE * 8].splitlines():
            self.listener.push(line, "udp")


class SyslogListener:
    def __init__(self, service: WifiService, host: str, udp_port: int, tcp_port: int, fmt: str) -> None:
        self.service, self.host, self.udp_port, self.tcp_port, self.fmt = service, host, udp_port, tcp_port, fmt
        self._queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue(100_000)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.received = self.dropped = 0

    def describe(self) -> dict[str, Any]:
        return {"host": self.host, "udp_port": self.udp_port or None, "tcp_port": self.tcp_port or None,
                "format": self.fmt, "received": self.received, "dropped_queue_full": self.dropped}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.udp_port:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.host,
                                                                                             self.udp_port))
            self._udp = transport
            self.udp_port = transport.get_extra_info("sockname")[1]
        if self.tcp_port:
            self._tcp = await asyncio.start_server(self._client, self.host, self.tcp_port, limit=MAX_LINE * 2)
            self.tcp_port = self._tcp.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self._drain(), name="wifi-syslog")
        log.info("WiFi syslog listener on %s (udp %s, tcp %s, format %s)", self.host, self.udp_port or "off",
                 self.tcp_port or "off", self.fmt)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._clients):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
        if self._task is not None:
            await self._queue.put((b"", "stop"))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)

    def push(self, line: bytes, channel: str) -> None:
        self.received += 1
        try:
            self._queue.put_nowait((line, channel))
        except asyncio.QueueFull:
            # a UDP sender cannot be slowed down: count what we could not take (the metric shows it)
            self.dropped += 1
            self.service.rejected_total.labels("queue_full").inc()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as err:
                    if err.partial.strip():
                        await self._put(err.partial, "tcp")
                    return
                except asyncio.LimitOverrunError:
                    await reader.read(MAX_LINE * 2)
                    await self._put(b"<overlong line>", "tcp")
                    continue
                m = _OCTET.match(line)
                if m and int(m.group(1)) >= len(line) - m.end() - 1:   # octet-counted frame
                    need = int(m.group(1)) - (len(line) - m.end())
                    rest = await reader.readexactly(need) if need > 0 else b""
                    line = (line[m.end():] + rest)
                for part in line.splitlines():
                    await self._put(part, "tcp")
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()

    async def _put(self, line: bytes, channel: str) -> None:
        self.received += 1
        await self._queue.put((line, channel))     # TCP: back-pressure instead of loss

    async def _drain(self) -> None:
        while True:
            line, channel = await self._queue.get()
            if channel == "stop":
                return
            batch: dict[str, list[str]] = {channel: [line.decode("utf-8", "backslashreplace")]}
            deadline = asyncio.get_running_loop().time() + BATCH_WAIT_S
            stopping = False
            while sum(len(v) for v in batch.values()) < BATCH_LINES:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    line, channel = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                if channel == "stop":
                    stopping = True
                    break
                batch.setdefault(channel, []).append(line.decode("utf-8", "backslashreplace"))
            for ch, lines in batch.items():
                try:
                    await self.service.ingest_lines(lines, self.fmt, f"syslog-{ch}")
                except Exception:     # a store outage: the lines are lost; say so loudly
                    log.exception("WiFi syslog batch of %d lines could not be ingested", len(lines))
                    self.service.rejected_total.labels("store_error").inc(len(lines))
            if stopping:
                return
