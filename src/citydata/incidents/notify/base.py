"""The notifier plugin interface: one class per channel (webhook, smtp, line) behind one base class.

A notifier sends one message to one agency. ``address(agency)`` says where (None: the agency has no address on
this channel, or the channel is not configured, so nothing is queued for it). ``send`` raises ``NotifyError``
on any failure; the delivery worker retries with backoff and dead-letters after the last attempt.
"""

from __future__ import annotations

import abc
import importlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from citydata.errors import CityDataError

if TYPE_CHECKING:
    import httpx

    from citydata.config import Settings

log = logging.getLogger(__name__)


class NotifyError(CityDataError):
    status, code, title = 502, "notify_failed", "Notification failed"


@dataclass(frozen=True)
class Message:
    """What is sent: a machine payload (JSON for webhooks) and a short human text (e-mail, LINE)."""

    delivery_id: int
    event: str
    subject: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)


class Notifier(abc.ABC):
    """One outgoing channel."""

    channel: str = ""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings, self.http = settings, http
        self.timeout = settings.ioc_delivery_timeout_s

    @abc.abstractmethod
    def address(self, agency: dict[str, Any]) -> str | None:
        """Where this channel reaches ``agency`` (an agencies row), or None."""

    @abc.abstractmethod
    async def send(self, agency: dict[str, Any], message: Message) -> None:
        """Deliver ``message``; raise ``NotifyError`` on failure."""


# Built-in plugins go through the same registry as third-party ones: name → "module:Class", imported lazily.
NOTIFIERS: dict[str, str] = {
    "webhook": "citydata.incidents.notify.webhook:WebhookNotifier",
    "smtp": "citydata.incidents.notify.smtp:SmtpNotifier",
    "line": "citydata.incidents.notify.line:LineNotifier",
}


def load_notifiers(settings: Settings, http: httpx.AsyncClient,
                   names: dict[str, str] | None = None) -> dict[str, Notifier]:
    """Instantiate every registered notifier; one that cannot be imported is logged once and left out."""
    out: dict[str, Notifier] = {}
    for name, target in (names or NOTIFIERS).items():
        module_name, _, cls_name = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError) as err:
            log.warning("notifier %s (%s) unavailable: %s", name, target, err)
            continue
        out[name] = cls(settings, http)
    return out
