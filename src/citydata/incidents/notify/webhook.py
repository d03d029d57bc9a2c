"""Webhooks: ``POST`` the JSON payload to the agency's URL, signed with HMAC-SHA256.

Headers: ``X-CityData-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the agency's
secret>``, ``X-CityData-Timestamp`` (Unix seconds of this attempt), ``X-CityData-Event`` and
``X-CityData-Delivery`` (the same id on every retry, so a receiver can drop duplicates). Any 2xx is success.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx
import orjson

from citydata.incidents.notify.base import Message, Notifier, NotifyError


def signature(secret: str, body: bytes) -> str:
    """The ``X-CityData-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """For receivers (and tests): constant-time check of a signature header."""
    return hmac.compare_digest(signature(secret, body), header)


class WebhookNotifier(Notifier):
    channel = "webhook"

    def address(self, agency: dict[str, Any]) -> str | None:
        url = agency.get("webhook_url")
        return str(url) if url and agency.get("webhook_secret") else None

    async def send(self, agency: dict[str, Any], message: Message) -> None:
        url, secret = agency.get("webhook_url"), agency.get("webhook_secret")
        if not url or not secret:
            raise NotifyError(f"agency {agency.get('id')} has no webhook URL and secret")
        body = orjson.dumps({**message.payload, "delivery_id": message.delivery_id, "event": message.event})
        headers = {"Content-Type": "application/json", "User-Agent": "CityData-Webhook/1",
                   "X-CityData-Event": message.event, "X-CityData-Delivery": str(message.delivery_id),
                   "X-CityData-Timestamp": str(int(time.time())),
                   "X-CityData-Signature": signature(str(secret), body)}
        try:
            response = await self.http.post(str(url), content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as err:
            raise NotifyError(f"webhook {type(err).__name__}") from err
        if not 200 <= response.status_code < 300:
            raise NotifyError(f"webhook answered {response.status_code}")
