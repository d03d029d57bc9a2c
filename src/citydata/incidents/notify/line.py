"""LINE Messaging API push messages (LINE Notify closed in 2025).

``POST {ioc_line_api_url}/v2/bot/message/push`` with the channel access token as Bearer, body
``{"to": <user, group or room id>, "messages": [{"type": "text", "text": ...}]}`` and an ``X-Line-Retry-Key``
derived from the delivery id, so a retried push is not delivered twice.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from citydata.incidents.notify.base import Message, Notifier, NotifyError

LINE_TEXT_MAX = 5000
RETRY_NAMESPACE = uuid.UUID("6f1c2a52-39a1-4f0e-9a63-0c3bbf1e6d2a")


class LineNotifier(Notifier):
    channel = "line"

    def address(self, agency: dict[str, Any]) -> str | None:
        target = agency.get("line_to")
        return str(target) if target and self.settings.ioc_line_channel_token is not None else None

    async def send(self, agency: dict[str, Any], message: Message) -> None:
        to, token = self.address(agency), self.settings.ioc_line_channel_token
        if to is None or token is None:
            raise NotifyError(f"agency {agency.get('id')} has no LINE target (or LINE is not configured)")
        url = self.settings.ioc_line_api_url.rstrip("/") + "/v2/bot/message/push"
        body = {"to": to, "messages": [{"type": "text", "text": message.text[:LINE_TEXT_MAX]}]}
        headers = {"Authorization": f"Bearer {token.get_secret_value()}",
                   "X-Line-Retry-Key": str(uuid.uuid5(RETRY_NAMESPACE, str(message.delivery_id)))}
        try:
            response = await self.http.post(url, json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as err:
            raise NotifyError(f"line {type(err).__name__}") from err
        # 409: the retry key was already accepted, i.e. an earlier attempt did get through.
        if not (200 <= response.status_code < 300 or response.status_code == 409):
            raise NotifyError(f"line answered {response.status_code}")
