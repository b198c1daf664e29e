"""The WeChat member card as a campaign channel (an edge: HTTP): the message is written on the member's card, with
WeChat's notification of the change, through the official account's card API as WeChat documents it:

``POST {api_base}/card/membercard/updateuser?access_token=…`` with ``{"card_id", "code", "custom_field_value1":
text, "notify_optional": {"is_notify_custom_field1": true}}`` → ``{"errcode": 0, "errmsg": "ok", "result_bonus",
"result_balance", "openid"}``.

The card is the member's activated member card (``card_id`` and ``code``, the member card number, from the portal's
adapter, :class:`marketing.members.MemberCards`); its template names ``custom_field1`` the card's message line
(``portal.wechat.card``). The access token is the template messages' (:class:`.wechat.WechatChannel`, one per
process: WeChat ends an older token when a new one is fetched). The body *sets* the line (no ``add_bonus``), so a
send taken over after its worker died sets the same line again: the card ends the same (idempotent per send), while
WeChat's notification of the change may be shown twice in that window of milliseconds (updateuser has no
anti-reentry id, unlike the template messages' ``client_msg_id``). Errors: 40056 (not a code of this card: the
member removed it, or it was never taken), 40073 (no such card template), 47001 (a malformed body) are permanent;
40001/42001 refetch the token once; -1 and transport errors are retried.
"""
from __future__ import annotations

from typing import Any

from marketing.channels import Outgoing
from marketing.channels.wechat import PERMANENT, WechatChannel
from marketing.core.campaign_spec import MAX_CARD_TEXT as MAX_TEXT
from marketing.errors import ChannelFailed

CARD_PERMANENT: frozenset[int] = PERMANENT | {40056, 40073, 47001}


def update_body(card_id: str, code: str, text: str) -> dict[str, Any]:
    # the line is short on the card: approval refused a longer text (campaign_spec.MAX_CARD_TEXT)
    return {"card_id": card_id, "code": code, "custom_field_value1": text.strip()[:MAX_TEXT],
            "notify_optional": {"is_notify_custom_field1": True}}


class WechatCardChannel:
    def __init__(self, account: WechatChannel) -> None:
        self.account = account

    def send(self, msg: Outgoing, now: float) -> str:
        card_id = msg.extra.get("card_id", "")
        if not msg.address or not card_id:
            raise ChannelFailed("wechat_card", "the member has no activated member card", permanent=True)
        self.account.call("/card/membercard/updateuser", update_body(card_id, msg.address, msg.content.text), now,
                          channel="wechat_card", permanent=CARD_PERMANENT)
        return f"card:{msg.address}"
