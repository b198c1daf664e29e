"""SMS for campaigns (an edge): the :class:`SmsGateway` protocol the portal's SMS backends implement, and the
channel that fills an approved template.

Providers approve templates in advance: a marketing SMS names the campaign's approved template id (entered in the
editor) or else the one configured for its message category (``gateway.templates``) and passes the campaign's
parameters; the text the member reads is the template's, and a
campaign's ``text`` (checked at approval by marketing.core.sms_rules: category, forbidden content, the provider's
refusal suffix) must be that text. A provider's forbidden hours (Aliyun: no promotional SMS 20:00–08:00) are
decided by the contact policy (:attr:`SmsChannel.forbidden_hours` → ``provider_hours``) and checked again here at the
moment of sending, in the store's time zone. Marketing never imports the portal: the composition root hands the
portal's backend in.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from typing import Protocol

from marketing.channels import Outgoing
from marketing.core import sms_rules
from marketing.errors import ChannelFailed


class SmsGateway(Protocol):
    #: "tencent", "aliyun" or "console" (marketing.core.sms_rules.PROVIDERS)
    provider: str
    #: the approved template id per message category
    templates: Mapping[str, str]

    def send_marketing(self, e164: str, template_id: str, params: Sequence[str], session: str) -> str:
        """Send one templated SMS; the provider's serial number. ``session`` is echoed in delivery receipts.
        Raises :class:`marketing.errors.ChannelFailed`."""
        ...


class SmsChannel:
    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    @property
    def forbidden_hours(self) -> tuple[time, time] | None:
        """Local hours in which the provider forbids marketing SMS (the contact policy's ``provider_hours``)."""
        return sms_rules.rules_for(self.gateway.provider).promo_hours

    def send(self, msg: Outgoing, now: float) -> str:
        if not msg.address:
            raise ChannelFailed("sms", "the member has no phone number", permanent=True)
        until = sms_rules.promo_forbidden_until(self.gateway.provider, datetime.fromtimestamp(now, UTC), msg.timezone)
        if until is not None:  # decided before these hours began, sent inside them: never sent late at night
            raise ChannelFailed("sms", f"{self.gateway.provider} forbids marketing SMS at this hour "
                                       f"(until {until:%Y-%m-%d %H:%M} UTC)", permanent=True)
        problems = sms_rules.problems(self.gateway.provider, msg.category, msg.content.text)
        template = msg.content.sms_template_id or self.gateway.templates.get(msg.category)
        if template is None:
            problems.append(f"no approved template for {msg.category!r}")  # never empty: approval checked it
        if problems:  # approval checked it; a changed configuration must still not let it through
            raise ChannelFailed("sms", "; ".join(problems), permanent=True)
        assert template is not None
        return self.gateway.send_marketing(msg.address, template, msg.content.sms_params, msg.key)
