"""What the SMS providers and MIIT Order 31 demand of a marketing text, and how a member refuses by reply.

- MIIT Order 31 (2015): no commercial SMS without consent; every one carries an easy way to refuse; a refusal stops
  the sending at once.
- Tencent Cloud SMS: templates approved in advance; marketing texts end with "拒收请回复R"; coupon promotion,
  win-back (用户召回) and "visit the store" (邀请到店) content may not be sent by SMS at all.
- Aliyun SMS: marketing texts end with "回T退订"; no promotional SMS from 20:00 to 08:00 local time
  (:attr:`ProviderRules.promo_hours`): the contact policy refuses such a send as ``provider_hours`` whatever its own
  quiet hours are configured to (marketing.core.contact), and the SMS channel checks it again when it sends
  (:func:`promo_forbidden_until`).

A campaign with an attached offer issues a coupon to each treated member when it sends. Through a provider that
forbids coupon promotion in SMS (Tencent, and the console backend that follows it) such a campaign is refused at
creation and at approval (:func:`allows_offers`): an SMS that names a coupon is coupon promotion whatever its
declared category. Through a provider that allows it (Aliyun) the coupon goes to the member card only: the text is
the approved template's, which cannot gain a coupon code after approval.

A campaign declares its message's category; the categories a provider forbids are refused before any template is
filled. The keyword screen is a second line for a category declared wrongly, not the rule itself.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

from marketing.core.contact import window_until

Category = Literal["notice", "coupon", "winback", "visit_invite", "member_benefit"]
CATEGORIES: tuple[Category, ...] = ("notice", "coupon", "winback", "visit_invite", "member_benefit")


@dataclass(frozen=True)
class ProviderRules:
    refusal_suffix: str
    forbidden_categories: frozenset[str]
    #: words that betray a forbidden category in a text declared as another
    forbidden_words: tuple[str, ...] = ()
    #: local hours [start, end) in which the provider forbids promotional (marketing) SMS
    promo_hours: tuple[time, time] | None = None


PROVIDERS: dict[str, ProviderRules] = {
    "tencent": ProviderRules("拒收请回复R", frozenset({"coupon", "winback", "visit_invite"}),
                             ("优惠券", "券", "到店", "来店", "回来看看", "好久不见")),
    "aliyun": ProviderRules("回T退订", frozenset(), promo_hours=(time(20, 0), time(8, 0))),
    # the console backend of development and tests follows the strictest rules we know
    "console": ProviderRules("拒收请回复R", frozenset({"coupon", "winback", "visit_invite"}),
                             ("优惠券", "券", "到店", "来店", "回来看看", "好久不见"),
                             promo_hours=(time(20, 0), time(8, 0))),
}

#: replies that refuse marketing SMS (compared after NFKC, trimming and upper-casing: "ｔｄ" and " r " count)
REFUSAL_REPLIES: frozenset[str] = frozenset({"R", "T", "TD", "N", "退订", "拒收"})


def rules_for(provider: str) -> ProviderRules:
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise ValueError(f"sms provider: expected one of {sorted(PROVIDERS)}, got {provider!r}") from None


def problems(provider: str, category: str, text: str) -> list[str]:
    """Why this marketing text may not be sent through ``provider`` (empty: it may)."""
    rules = rules_for(provider)
    found: list[str] = []
    if category not in CATEGORIES:
        found.append(f"category: expected one of {CATEGORIES}, got {category!r}")
    elif category in rules.forbidden_categories:
        found.append(f"category: {provider} forbids {category!r} content in SMS")
    words = [w for w in rules.forbidden_words if w in text]
    if words and category not in rules.forbidden_categories:
        found.append(f"text: contains {', '.join(words)}, content {provider} forbids in SMS")
    if not text.rstrip().endswith(rules.refusal_suffix):
        found.append(f"text: must end with the refusal suffix {rules.refusal_suffix!r}")
    return found


def promo_forbidden_until(provider: str, now: datetime, tz: str) -> datetime | None:
    """None when ``provider`` allows a marketing SMS now in the store's zone ``tz``; otherwise when it will."""
    hours = rules_for(provider).promo_hours
    return None if hours is None else window_until(*hours, now, tz)


def allows_offers(provider: str) -> bool:
    """Whether an SMS campaign through ``provider`` may carry an offer (its coupon on the member card only)."""
    return "coupon" not in rules_for(provider).forbidden_categories


def is_refusal(reply: str) -> bool:
    """Whether an inbound SMS reply refuses marketing."""
    return unicodedata.normalize("NFKC", reply).strip().upper() in REFUSAL_REPLIES
