"""The WeChat member card (会员卡, card type ``MEMBER_CARD``) in a member's WeChat card holder (pure: values in, request
bodies and numbers out).

What keliu asks of WeChat (the calls are :mod:`portal.wechat.card_api`):

* one card *template* per official account (``card/create``): brand, title, colour, logo; ``use_custom_code`` so
  that each member's card carries keliu's **member card number**; ``code_type`` ``CODE_TYPE_NONE``: the card in
  WeChat shows **no code to scan**, because a code printed on a card is a static code a screenshot reuses. Its
  centre button (``center_url``) opens the member page, whose QR code changes every minute and is used up at the
  counter (:mod:`marketing.core.card`);
* per member, a QR code that adds the card with their number (``card/qrcode/create``, ``QR_CARD``);
* when WeChat pushes ``user_get_card`` for that card and a number keliu made, its activation
  (``card/membercard/activate``, ``membership_number`` = ``code`` = the member card number);
* the card's message line (``custom_field1``), which campaigns set through ``card/membercard/updateuser``
  (marketing's ``wechat_card`` channel, :mod:`marketing.channels.wechat_card`).

The member card number is never the phone number: ``8`` + the member id in 9 digits + a 6-digit tag keyed with
``token_hmac`` (16 digits, WeChat allows up to 20). keliu stores nothing per member for it: the number is computed,
and a number pushed back by WeChat is checked by its tag before anything is activated (a made-up number is
refused).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

PREFIX = "8"
ID_DIGITS = 9
TAG_DIGITS = 6


def card_number(key: bytes, member_id: int) -> str:
    """The member card number of ``member_id`` (16 digits; the member id is readable, the tag is keyed)."""
    if not 0 < member_id < 10**ID_DIGITS:
        raise ValueError(f"member id out of range for a card number: {member_id}")
    body = PREFIX + str(member_id).zfill(ID_DIGITS)
    return body + _tag(key, body)


def member_of_number(key: bytes, number: str) -> int | None:
    """The member a card number belongs to, or None when it is not one keliu made (wrong length, tag or prefix)."""
    if len(number) != 1 + ID_DIGITS + TAG_DIGITS or not (number.isascii() and number.isdigit()):
        return None
    body, tag = number[:1 + ID_DIGITS], number[1 + ID_DIGITS:]
    if not body.startswith(PREFIX) or not hmac.compare_digest(tag, _tag(key, body)):
        return None
    member_id = int(body[1:])
    return member_id or None


def _tag(key: bytes, body: str) -> str:
    mac = hmac.new(key, f"wechat-member-card:{body}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(mac[:8], "big") % 10**TAG_DIGITS).zfill(TAG_DIGITS)


@dataclass(frozen=True)
class CardTemplate:
    """What the card in WeChat shows: the brand (the mall's name, ≤ 12 characters), the title (≤ 9), the
    logo (a URL on WeChat's image host, uploaded once with ``media/uploadimg``), the colour name
    (``Color010``…), the member page's URL for the centre button, and the rights text."""

    brand_name: str
    title: str
    logo_url: str
    center_url: str
    prerogative: str
    color: str = "Color010"
    notice: str = "结账时打开会员码"
    description: str = "会员码每分钟更新，请在会员页出示"
    center_title: str = "会员码"
    #: the name of the card's message line (custom_field1), which campaigns fill (marketing's wechat_card channel)
    message_name: str = "会员消息"


def create_body(t: CardTemplate) -> dict[str, Any]:
    """The body of ``card/create`` for a member card template (as documented for ``MEMBER_CARD``)."""
    return {"card": {"card_type": "MEMBER_CARD", "member_card": {
        "base_info": {
            "logo_url": t.logo_url, "brand_name": t.brand_name[:12], "title": t.title[:9], "color": t.color,
            "code_type": "CODE_TYPE_NONE", "notice": t.notice, "description": t.description,
            "sku": {"quantity": 100000000}, "date_info": {"type": "DATE_TYPE_PERMANENT"},
            "use_custom_code": True, "get_limit": 1, "can_share": False, "can_give_friend": False,
            "center_title": t.center_title, "center_url": t.center_url,
        },
        "prerogative": t.prerogative, "supply_bonus": False, "supply_balance": False,
        # the card's one message line: campaigns write it (card/membercard/updateuser's custom_field_value1, with
        # WeChat's notification of the change); its name is shown beside the value, the URL opens the member page
        "custom_field1": {"name": t.message_name, "url": t.center_url},
        # activation by keliu's call after the member took the card (not WeChat's own form)
        "auto_activate": False, "wx_activate": False,
    }}}


def qrcode_body(card_id: str, number: str) -> dict[str, Any]:
    """The body of ``card/qrcode/create``: a QR code that gives this card with this number, once."""
    return {"action_name": "QR_CARD", "expire_seconds": 1800,
            "action_info": {"card": {"card_id": card_id, "code": number, "is_unique_code": True,
                                     "outer_str": "member-page"}}}


def activate_body(card_id: str, number: str) -> dict[str, Any]:
    """The body of ``card/membercard/activate``: the member card number is both the code and the membership
    number shown on the card."""
    return {"card_id": card_id, "code": number, "membership_number": number}

