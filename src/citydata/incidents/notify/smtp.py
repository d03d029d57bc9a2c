"""E-mail over SMTP (stdlib ``smtplib`` in a worker thread, bounded by the delivery timeout)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import orjson

from citydata.incidents.notify.base import Message, Notifier, NotifyError


class SmtpNotifier(Notifier):
    channel = "smtp"

    def address(self, agency: dict[str, Any]) -> str | None:
        email = agency.get("email")
        return str(email) if email and self.settings.ioc_smtp_host else None

    def build(self, to: str, message: Message) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.settings.ioc_smtp_from
        mail["To"] = to
        mail["Subject"] = message.subject[:200]
        mail["X-CityData-Event"] = message.event
        mail["X-CityData-Delivery"] = str(message.delivery_id)
        mail.set_content(message.text)
        mail.add_attachment(orjson.dumps(message.payload, option=orjson.OPT_INDENT_2), maintype="application",
                            subtype="json", filename=f"{message.event}.json")
        return mail

    def _send_blocking(self, mail: EmailMessage) -> None:
        s = self.settings
        assert s.ioc_smtp_host is not None
        with smtplib.SMTP(s.ioc_smtp_host, s.ioc_smtp_port, timeout=self.timeout) as client:
            if s.ioc_smtp_starttls:
                client.starttls()
            if s.ioc_smtp_username and s.ioc_smtp_password is not None:
                client.login(s.ioc_smtp_username, s.ioc_smtp_password.get_secret_value())
            client.send_message(mail)

    async def send(self, agency: dict[str, Any], message: Message) -> None:
        to = self.address(agency)
        if to is None:
            raise NotifyError(f"agency {agency.get('id')} has no e-mail address (or SMTP is not configured)")
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send_blocking, self.build(to, message)),
                                   self.timeout + 1)
        except (OSError, smtplib.SMTPException, TimeoutError) as err:
            raise NotifyError(f"smtp {type(err).__name__}") from err
