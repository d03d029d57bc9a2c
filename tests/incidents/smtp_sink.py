"""A real SMTP server on localhost for tests (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).

aiosmtpd is not in the locked environment, so this small asyncio server stands in as the sink; the platform
talks to it with the standard library's SMTP client over a real socket."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write((line + "\r\n").encode())
            await writer.drain()

        await say("220 citydata-test-sink ESMTP")
        mail_from, rcpt = "", []
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    writer.write(b"250-citydata-test-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    await writer.drain()
                elif verb == "HELO":
                    await say("250 citydata-test-sink")
                elif verb == "MAIL":
                    mail_from, rcpt = line.split(":", 1)[1].split()[0].strip("<>"), []
                    await say("250 OK")
                elif verb == "RCPT":
                    rcpt.append(line.split(":", 1)[1].strip().strip("<>"))
                    await say("250 OK")
                elif verb == "DATA":
                    await say("354 End data with <CR><LF>.<CR><LF>")
                    lines: list[bytes] = []
                    while True:
                        chunk = await reader.readline()
                        if chunk in (b".\r\n", b".\n", b""):
                            break
                        lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    msg = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                    assert isinstance(msg, EmailMessage)
                    self.messages.append(Received(mail_from, rcpt, msg))
                    await say("250 OK: queued")
                elif verb in ("RSET", "NOOP"):
                    await say("250 OK")
                elif verb == "QUIT":
                    await say("221 Bye")
                    return
                else:
                    await say("502 Command not implemented")
        finally:
            writer.close()
