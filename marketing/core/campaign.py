"""A campaign's specification: its trigger, segment and message, parsed and checked once (pure).

A campaign is stored as columns plus two JSON documents (``campaigns.params`` and ``campaigns.message``); this
module turns them into frozen values and refuses what may not be sent, naming the field:

- **trigger** (``campaigns.trigger``): ``login_first`` / ``login_return`` (the portal enqueues after a login
  commits), ``visit`` / ``dwell`` (a member's visit started, or lasted ``dwell_minutes``; presence-triggered, so
  the separate ``presence_offers`` consent is needed at send time), ``lapsed`` (no visit or login for
  ``lapsed_days``), ``expiring`` (a coupon of ``offer_id`` ends within ``expiring_hours``), ``scheduled`` (a send
  to the segment at ``send_at``);
- **segment**: predicates on member facts, all of which must hold (:class:`Segment`);
- **message** (:class:`Content`): the text (the Wi-Fi success page, the webhook, the SMS's text as approved), the
  SMS template's parameters, the WeChat template id, data and link, the webhook's URL.

Approval (:func:`approval_problems`) refuses a campaign without a consent basis (its channel's purpose is fixed by
the contact policy; a trade-area or presence campaign says so), an SMS in a category the provider forbids or
without the refusal suffix, an SMS without an approved template for its category, a webhook without a URL.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from marketing.core import sms_rules
from marketing.core.contact import CHANNELS
from marketing.errors import FieldInvalid

TRIGGERS: tuple[str, ...] = ("login_first", "login_return", "visit", "dwell", "lapsed", "expiring", "scheduled")
#: triggers fired by a member's presence (PIPL art. 28: movement tracks; the presence consent is needed)
PRESENCE_TRIGGERS = frozenset({"visit", "dwell"})
#: triggers evaluated by the beat over the whole segment (the others fire per member from an event)
BEAT_TRIGGERS = frozenset({"lapsed", "expiring", "scheduled"})
STATUSES: tuple[str, ...] = ("draft", "approved", "paused", "archived")
#: the lifecycle: which status may follow which
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"approved", "archived"}),
    "approved": frozenset({"paused", "archived"}),
    "paused": frozenset({"approved", "archived"}),
    "archived": frozenset(),
}


@dataclass(frozen=True)
class Segment:
    """Predicates on member facts; ``None`` means "any". Days count back from the evaluation's instant."""

    #: the member's first store (the store where they became a member)
    store_id: str | None = None
    #: seen (a login or a visit linked to the member) within the last N days
    seen_within_days: int | None = None
    #: not seen for at least N days
    not_seen_days: int | None = None
    min_logins: int | None = None
    min_purchases: int | None = None
    min_redemptions: int | None = None


@dataclass(frozen=True)
class Params:
    """The trigger's parameters and the segment."""

    segment: Segment = Segment()
    lapsed_days: int = 30
    dwell_minutes: int = 20
    expiring_hours: int = 48
    offer_id: int | None = None
    send_at: datetime | None = None
    #: pushes on this campaign may carry a trade-area offer (issued by one store, redeemed at another)
    trade_area: bool = False


@dataclass(frozen=True)
class Content:
    """What the channel sends. ``text`` is the message as the member reads it (for SMS: the approved template's
    text with its parameters filled, ending with the provider's refusal suffix)."""

    text: str = ""
    sms_params: tuple[str, ...] = ()
    wechat_template_id: str = ""
    wechat_data: Mapping[str, str] = field(default_factory=dict)
    url: str = ""
    webhook_url: str = ""


def _int(raw: Mapping[str, Any], key: str, default: int | None, lo: int = 1) -> int | None:
    v = raw.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise FieldInvalid(key, f"expected an integer >= {lo}, got {v!r}")
    return int(v)


def parse_params(raw: Mapping[str, Any] | str) -> Params:
    doc = json.loads(raw) if isinstance(raw, str) else dict(raw)
    if not isinstance(doc, dict):
        raise FieldInvalid("params", "expected a JSON object")
    seg_raw = doc.get("segment", {})
    seg_raw = {} if seg_raw is None else seg_raw
    if not isinstance(seg_raw, dict):
        raise FieldInvalid("segment", "expected an object")
    known = {f.name for f in fields(Segment)}
    for k in seg_raw:
        if k not in known:
            raise FieldInvalid(f"segment.{k}", f"unknown predicate (known: {', '.join(sorted(known))})")
    store = seg_raw.get("store_id")
    if store is not None and not isinstance(store, str):
        raise FieldInvalid("segment.store_id", f"expected a store id, got {store!r}")
    segment = Segment(store_id=store, **{k: _int(seg_raw, k, None, 0) for k in known - {"store_id"}})
    send_at = doc.get("send_at")
    when = None
    if send_at is not None:
        try:
            when = datetime.fromisoformat(str(send_at))
        except ValueError:
            raise FieldInvalid("send_at", f"expected an ISO 8601 instant, got {send_at!r}") from None
        if when.tzinfo is None:
            raise FieldInvalid("send_at", "expected an offset (e.g. +08:00)")
    trade = doc.get("trade_area", False)
    if not isinstance(trade, bool):
        raise FieldInvalid("trade_area", f"expected true or false, got {trade!r}")
    return Params(segment=segment, lapsed_days=_int(doc, "lapsed_days", 30) or 30,
                  dwell_minutes=_int(doc, "dwell_minutes", 20) or 20,
                  expiring_hours=_int(doc, "expiring_hours", 48) or 48,
                  offer_id=_int(doc, "offer_id", None), send_at=when, trade_area=trade)


def parse_content(raw: Mapping[str, Any] | str) -> Content:
    doc = json.loads(raw) if isinstance(raw, str) else dict(raw)
    if not isinstance(doc, dict):
        raise FieldInvalid("message", "expected a JSON object")
    for key in ("text", "wechat_template_id", "url", "webhook_url"):
        if not isinstance(doc.get(key, ""), str):
            raise FieldInvalid(key, "expected text")
    params = doc.get("sms_params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise FieldInvalid("sms_params", "expected a list of texts")
    data = doc.get("wechat_data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise FieldInvalid("wechat_data", "expected an object of texts")
    return Content(text=doc.get("text", ""), sms_params=tuple(params),
                   wechat_template_id=doc.get("wechat_template_id", ""), wechat_data=dict(data),
                   url=doc.get("url", ""), webhook_url=doc.get("webhook_url", ""))


def approval_problems(trigger: str, channel: str, category: str, params: Params, content: Content,
                      sms_provider: str, sms_templates: Mapping[str, str]) -> list[str]:
    """Why the campaign may not be approved (empty: it may). ``sms_templates``: the approved template id per
    message category of the configured SMS provider."""
    found: list[str] = []
    if trigger not in TRIGGERS:
        found.append(f"trigger: expected one of {TRIGGERS}, got {trigger!r}")
    if channel not in CHANNELS:
        found.append(f"channel: expected one of {CHANNELS}, got {channel!r}")
    if category not in sms_rules.CATEGORIES:
        found.append(f"category: expected one of {sms_rules.CATEGORIES}, got {category!r}")
    if trigger == "expiring" and params.offer_id is None:
        found.append("offer_id: an expiring-coupon campaign names its offer")
    if trigger == "scheduled" and params.send_at is None:
        found.append("send_at: a scheduled campaign says when")
    if channel == "sms":
        found += sms_rules.problems(sms_provider, category, content.text)
        if category not in sms_templates:
            found.append(f"sms template: no approved {sms_provider} template for {category!r} messages")
    elif channel in ("splash", "webhook") and not content.text.strip():
        found.append("text: empty")
    if channel == "wechat" and not content.wechat_template_id:
        found.append("wechat_template_id: a WeChat template message needs its template")
    if channel == "webhook" and not content.webhook_url.startswith(("https://", "http://")):
        found.append("webhook_url: expected an http(s) URL")
    return found
