"""Typed configuration of campaign execution: ``[marketing]`` (pure).

    send_lease_s       a send being handed to its channel is leased for this long; a worker that dies mid-send
                       leaves the lease to run out, then the send is tried again with the same idempotency key
    max_attempts       channel calls of one message before it is recorded ``failed``
    rate_sms, rate_wechat, rate_webhook
                       Celery rate limits of each channel's send task (``"N/s"``, ``"N/m"``; per worker process)
    webhook_timeout_s  seconds a webhook receiver has to answer
    sms_templates      the SMS provider's approved template ids, ``"category:template_id"`` each (e.g.
                       ``"member_benefit:2000101"``); a category without one cannot be sent by SMS
    callback_secret    the shared secret of the SMS reply callback (``/api/v1/sms/replies``); unset: the callback
                       answers 404 (no secret has a default)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from keliu.config import positive

_RATE = re.compile(r"^\d+(\.\d+)?/[smh]$")


def rate(value: str) -> str:
    if not _RATE.match(value):
        raise ValueError(f"expected a Celery rate such as '10/s' or '600/m', got {value!r}")
    return value


def templates(value: list[str]) -> list[str]:
    for item in value:
        category, _, tid = item.partition(":")
        if not category or not tid:
            raise ValueError(f"expected 'category:template_id', got {item!r}")
    return value


@dataclass(frozen=True)
class MarketingConfig:
    send_lease_s: int = field(default=120, metadata={"check": positive})
    max_attempts: int = field(default=5, metadata={"check": positive})
    rate_sms: str = field(default="10/s", metadata={"check": rate})
    rate_wechat: str = field(default="20/s", metadata={"check": rate})
    rate_webhook: str = field(default="50/s", metadata={"check": rate})
    webhook_timeout_s: int = field(default=10, metadata={"check": positive})
    sms_templates: list[str] = field(default_factory=list, metadata={"check": templates})
    callback_secret: str | None = None

    def sms_template_map(self) -> dict[str, str]:
        return dict(item.split(":", 1) for item in self.sms_templates)

    def rate_limits(self) -> dict[str, str]:
        # the member card is the same official account's API as the template messages
        return {"sms": self.rate_sms, "wechat": self.rate_wechat, "wechat_card": self.rate_wechat,
                "webhook": self.rate_webhook}
