"""The channels a campaign sends through (edges), behind one small interface the execution calls.

    splash    the Wi-Fi success page: the message is stored (``splash_messages``) in the send's own transaction,
              the portal shows it at the member's next success page (:mod:`.splash`)
    sms       the provider behind :class:`.sms.SmsGateway` (the portal's backends, injected by the composition
              root): an approved template id per message category, the provider's refusal suffix in the text
    wechat    a template message through the official account's ``/cgi-bin/message/template/send``
              (:mod:`.wechat`), ``client_msg_id`` = the send's idempotency key
    wechat_card  the member's WeChat member card: its message line set through ``card/membercard/updateuser``
              with WeChat's notification (:mod:`.wechat_card`)
    webhook   a signed POST (:mod:`.webhook`, signature in marketing.core.webhook)

Each push channel's ``send`` takes an :class:`Outgoing` and returns the channel's id of the message, or raises
:class:`marketing.errors.ChannelFailed`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from marketing.core.campaign_spec import Content


@dataclass(frozen=True)
class Outgoing:
    """One message to one member, as the channel needs it."""

    campaign_id: int
    step: int
    member_id: int
    category: str
    content: Content
    #: ``keliu-<campaign>-<step>-<member>``: equal for every attempt of this message
    key: str
    #: the member's address on this channel (E.164 number, openid, member card code; empty for the webhook)
    address: str = ""
    webhook_secret: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    #: the campaign's store's time zone (a provider's forbidden hours are local)
    timezone: str = "Asia/Shanghai"


class PushChannel(Protocol):
    def send(self, msg: Outgoing, now: float) -> str:
        """Hand the message to the channel; the channel's message id. Raises ChannelFailed."""
        ...
