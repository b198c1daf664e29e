"""A campaign as the console edits it: the form's fields in, a :class:`CampaignSpec` or the list of what is wrong
out (pure).

Every refusal is a :class:`Problem` with the field it concerns, a key the console translates
(:mod:`marketing.core.campaign_view`) and its parameters; nothing is stored while one remains. The rules:

- **consent basis** (PIPL arts. 14, 16): a campaign names the consents it relies on, and they must cover what its
  sends need (:func:`marketing.core.contact.needed_purposes`): the channel's own marketing consent, the separate
  ``presence_offers`` consent for a presence trigger (movement tracks are sensitive personal information, PIPL
  art. 28), ``trade_area`` for a mall-wide campaign; none at all is refused;
- **SMS** (MIIT Order 31 and the provider, :mod:`marketing.core.sms_rules`): an approved template id, a category
  the provider allows, no word betraying a forbidden category, the provider's refusal suffix at the end;
- WeChat needs its template id; a coupon-expiry trigger needs the offer whose coupons expire;
- the holdout is 1–50 % (a campaign without a control measures nothing), the window 1–90 days.

A segment is a predicate on member facts, one condition a line (or joined by ``and``)::

    visits >= 3
    last_visit_days <= 30
    store = starbucks
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marketing.core import contact, sms_rules

TRIGGERS: tuple[str, ...] = ("login_first", "login_return", "visit", "dwell", "lapsed", "expiring", "scheduled")
#: triggers fired by the sensor's presence data: they need the separate presence consent
PRESENCE_TRIGGERS = frozenset({"visit", "dwell"})
#: the parameter each trigger takes: (name, lowest, highest)
TRIGGER_PARAMS: Mapping[str, tuple[str, int, int]] = {
    "dwell": ("dwell_minutes", 1, 24 * 60), "lapsed": ("lapsed_days", 1, 365), "expiring": ("expiring_days", 1, 30)}
NUMERIC_FACTS = ("visits", "last_visit_days", "logins", "purchases", "redemptions")
TEXT_FACTS = ("store", "tag")
OPS = (">=", "<=", "!=", "=", ">", "<")
_CONDITION = re.compile(r"\s*([a-z_]+)\s*(>=|<=|!=|=|>|<)\s*(\S+)\s*$")
_SPLIT = re.compile(r"\n|\band\b", re.IGNORECASE)
MAX_MESSAGE = 500
MAX_TEMPLATE_ID = 64


@dataclass(frozen=True)
class Condition:
    fact: str
    op: str
    value: str | int


@dataclass(frozen=True)
class Problem:
    field: str
    key: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    #: exactly one of store_id (the store's campaign) and mall_id (a trade-area campaign)
    store_id: str | None
    mall_id: str | None
    trigger: str
    #: the trigger's parameter (TRIGGER_PARAMS), e.g. {"lapsed_days": 30}; "scheduled": {"at": "2026-12-24T10:00"}
    params: Mapping[str, Any]
    segment: tuple[Condition, ...]
    channel: str
    category: str
    provider: str | None
    message: str
    template_id: str | None
    offer_id: int | None
    consents: frozenset[str]
    control_share: float
    window_days: int
    cooldown_hours: int
    message_cost_cents: int

    def presence(self) -> bool:
        return self.trigger in PRESENCE_TRIGGERS

    def as_params(self) -> dict[str, Any]:
        """What the campaign's spec row keeps beside the ``campaigns`` columns (JSON)."""
        return {"params": dict(self.params), "segment": segment_text(self.segment), "provider": self.provider,
                "message": self.message, "template_id": self.template_id, "offer_id": self.offer_id,
                "consents": sorted(self.consents), "message_cost_cents": self.message_cost_cents,
                "cooldown_hours": self.cooldown_hours}


def parse_segment(text: str) -> tuple[tuple[Condition, ...], list[Problem]]:
    conditions: list[Condition] = []
    problems: list[Problem] = []
    for part in _SPLIT.split(text or ""):
        if not part.strip():
            continue
        m = _CONDITION.match(part)
        if m is None:
            problems.append(Problem("segment", "err_segment_syntax", {"text": part.strip()}))
            continue
        fact, op, raw = m.groups()
        if fact in NUMERIC_FACTS:
            if not raw.isdigit() or int(raw) > 10**6:
                problems.append(Problem("segment", "err_segment_number", {"fact": fact, "value": raw}))
                continue
            conditions.append(Condition(fact, op, int(raw)))
        elif fact in TEXT_FACTS:
            if op not in ("=", "!="):
                problems.append(Problem("segment", "err_segment_op", {"fact": fact, "op": op}))
                continue
            conditions.append(Condition(fact, op, raw))
        else:
            problems.append(Problem("segment", "err_segment_fact", {"fact": fact,
                                                                    "facts": ", ".join(NUMERIC_FACTS + TEXT_FACTS)}))
    return tuple(conditions), problems


def matches(segment: Sequence[Condition], facts: Mapping[str, Any]) -> bool:
    """Whether a member with ``facts`` is in the segment (every condition holds; an empty segment holds for all).
    Numeric facts are numbers (``last_visit_days``: None for a member never seen counts as infinitely long ago);
    ``store`` is the member's first store; ``tag`` a collection of tags, ``tag = vip`` meaning "has the tag"."""
    for c in segment:
        if c.fact == "tag":
            has = c.value in (facts.get("tag") or ())
            if has != (c.op == "="):
                return False
            continue
        value = facts.get(c.fact)
        if c.fact == "store":
            if (value == c.value) != (c.op == "="):
                return False
            continue
        number = float("inf") if value is None and c.fact == "last_visit_days" else float(value or 0)
        limit = float(c.value)
        ok = {">=": number >= limit, "<=": number <= limit, ">": number > limit, "<": number < limit,
              "=": number == limit, "!=": number != limit}[c.op]
        if not ok:
            return False
    return True


def segment_text(conditions: Sequence[Condition]) -> str:
    return "\n".join(f"{c.fact} {c.op} {c.value}" for c in conditions)


def _int(form: Mapping[str, Any], name: str, low: int, high: int, default: int,
         problems: list[Problem]) -> int:
    raw = str(form.get(name) if form.get(name) not in (None, "") else default).strip()
    if not re.fullmatch(r"-?\d{1,9}", raw) or not low <= int(raw) <= high:
        problems.append(Problem(name, "err_range", {"low": low, "high": high}))
        return default
    return int(raw)


def parse(form: Mapping[str, Any], *, scopes: Mapping[str, tuple[str | None, str | None]],
          offers: frozenset[int], default_provider: str = "tencent") -> tuple[CampaignSpec | None, list[Problem]]:
    """The console's form → a spec, or the problems. ``scopes``: the scope values the user may choose
    (``"store:s1"`` → ("s1", None), ``"mall:m1"`` → (None, "m1")); ``offers``: the offers they may attach.
    ``consents`` may be a list (checkboxes) or a comma-separated text."""
    problems: list[Problem] = []
    name = str(form.get("name") or "").strip()
    if not 1 <= len(name) <= 200:
        problems.append(Problem("name", "err_name_len"))
    scope = str(form.get("scope") or "")
    store_id, mall_id = scopes.get(scope, (None, None))
    if scope not in scopes:
        problems.append(Problem("scope", "err_scope_choice"))
    trigger = str(form.get("trigger") or "")
    params: dict[str, Any] = {}
    if trigger not in TRIGGERS:
        problems.append(Problem("trigger", "err_choice", {"choices": ", ".join(TRIGGERS)}))
    elif trigger in TRIGGER_PARAMS:
        pname, low, high = TRIGGER_PARAMS[trigger]
        params[pname] = _int(form, pname, low, high, {"dwell_minutes": 20, "lapsed_days": 30,
                                                      "expiring_days": 3}[pname], problems)
    elif trigger == "scheduled":
        at = str(form.get("scheduled_at") or "").strip()
        try:
            params["at"] = datetime.fromisoformat(at).replace(tzinfo=None).isoformat(timespec="minutes")
        except ValueError:
            problems.append(Problem("scheduled_at", "err_scheduled_at"))
    segment, seg_problems = parse_segment(str(form.get("segment") or ""))
    problems += seg_problems
    channel = str(form.get("channel") or "")
    if channel not in contact.CHANNELS:
        problems.append(Problem("channel", "err_choice", {"choices": ", ".join(contact.CHANNELS)}))
    category = str(form.get("category") or "notice")
    if category not in sms_rules.CATEGORIES:
        problems.append(Problem("category", "err_choice", {"choices": ", ".join(sms_rules.CATEGORIES)}))
    message = str(form.get("message") or "").strip()
    if not 1 <= len(message) <= MAX_MESSAGE:
        problems.append(Problem("message", "err_message_len", {"max": MAX_MESSAGE}))
    template_id = str(form.get("template_id") or "").strip() or None
    if template_id is not None and (len(template_id) > MAX_TEMPLATE_ID or not template_id.isprintable()):
        problems.append(Problem("template_id", "err_template_id"))
    provider: str | None = None
    if channel == "sms":
        provider = str(form.get("provider") or default_provider)
        if provider not in sms_rules.PROVIDERS:
            problems.append(Problem("provider", "err_choice", {"choices": ", ".join(sorted(sms_rules.PROVIDERS))}))
        else:
            rules = sms_rules.rules_for(provider)
            for text in sms_rules.problems(provider, category, message):
                if text.startswith("category"):
                    problems.append(Problem("category", "err_sms_category", {"provider": provider,
                                                                             "category": category}))
                elif "refusal suffix" in text:
                    problems.append(Problem("message", "err_sms_suffix", {"suffix": rules.refusal_suffix}))
                else:
                    words = [w for w in rules.forbidden_words if w in message]
                    problems.append(Problem("message", "err_sms_words", {"provider": provider,
                                                                          "words": "、".join(words)}))
        if template_id is None:
            problems.append(Problem("template_id", "err_template_required"))
    elif channel == "wechat" and template_id is None:
        problems.append(Problem("template_id", "err_template_required"))
    offer_raw = str(form.get("offer_id") or "").strip()
    offer_id: int | None = None
    if offer_raw:
        if not offer_raw.isdigit() or int(offer_raw) not in offers:
            problems.append(Problem("offer_id", "err_offer"))
        else:
            offer_id = int(offer_raw)
    if trigger == "expiring" and offer_id is None:
        problems.append(Problem("offer_id", "err_offer_required"))
    raw_consents = form.get("consents") or []
    given = [s.strip() for s in raw_consents.split(",")] if isinstance(raw_consents, str) else list(raw_consents)
    consents = frozenset(c for c in given if c)
    unknown = sorted(c for c in consents if c not in contact.PURPOSES)
    if unknown:
        problems.append(Problem("consents", "err_choice", {"choices": ", ".join(contact.PURPOSES)}))
    elif not consents:
        problems.append(Problem("consents", "err_consent_basis"))
    elif channel in contact.CHANNELS and trigger in TRIGGERS:
        needed = contact.needed_purposes(contact.Send(0, 0, channel, "UTC",  # type: ignore[arg-type,unused-ignore]
                                                      presence_triggered=trigger in PRESENCE_TRIGGERS,
                                                      trade_area=mall_id is not None))
        missing = [p for p in needed if p not in consents]
        if missing:
            problems.append(Problem("consents", "err_consent_missing", {"purposes": ", ".join(missing)}))
    share_pct = _int(form, "control_pct", 1, 50, 10, problems)
    window = _int(form, "window_days", 1, 90, 7, problems)
    cooldown = _int(form, "cooldown_hours", 0, 24 * 30, 24, problems)
    cost = _int(form, "message_cost_cents", 0, 10_000, 0, problems)
    if problems:
        return None, problems
    return CampaignSpec(name=name, store_id=store_id, mall_id=mall_id, trigger=trigger, params=params,
                        segment=segment, channel=channel, category=category, provider=provider, message=message,
                        template_id=template_id, offer_id=offer_id, consents=consents,
                        control_share=share_pct / 100.0, window_days=window, cooldown_hours=cooldown,
                        message_cost_cents=cost), []


#: allowed status changes: action → (statuses it applies to, the new status)
TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({"draft", "paused"}), "approved"),
    "pause": (frozenset({"approved"}), "paused"),
    "archive": (frozenset({"draft", "approved", "paused"}), "archived"),
}
#: statuses in which the spec may still be edited (an approved campaign is paused first)
EDITABLE = frozenset({"draft", "paused"})


def next_status(action: str, status: str) -> str | None:
    """The status after ``action``, or None when it does not apply to ``status``."""
    rule = TRANSITIONS.get(action)
    if rule is None or status not in rule[0]:
        return None
    return rule[1]
