"""The signed webhook (an edge: HTTP POST). The body is JSON without any personal data beyond keliu's member id;
the headers carry the timestamp, the HMAC-SHA256 signature and the idempotency key (marketing.core.webhook)."""
from __future__ import annotations

import json

import requests

from marketing.channels import Outgoing
from marketing.core import webhook
from marketing.errors import ChannelFailed


def body(msg: Outgoing, now: float) -> bytes:
    doc = {"campaign_id": msg.campaign_id, "step": msg.step, "member_id": msg.member_id, "text": msg.content.text,
           "url": msg.content.url or None, "sent_at": int(now)}
    if "coupon_code" in msg.extra:  # the campaign's offer: the coupon issued for this send
        doc["coupon"] = {"code": msg.extra["coupon_code"], "expires_at": msg.extra.get("coupon_expires_at")}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()


class WebhookChannel:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def send(self, msg: Outgoing, now: float) -> str:
        if not msg.webhook_secret:
            raise ChannelFailed("webhook", "the campaign has no secret", permanent=True)
        data = body(msg, now)
        try:
            resp = self._session.post(msg.content.webhook_url, data=data, timeout=self.timeout_s,
                                      headers=webhook.headers(msg.webhook_secret, int(now), data, msg.key))
        except requests.RequestException as exc:
            raise ChannelFailed("webhook", f"unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise ChannelFailed("webhook", f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise ChannelFailed("webhook", f"refused: HTTP {resp.status_code}", permanent=True)
        return msg.key
