"""A campaign's definition, in one place (pure): what the console's editor accepts, what is stored, what the
executor reads, and what approval refuses.

A campaign is the ``campaigns`` row's columns (name, scope, trigger, channel, category, holdout, window, cooldown,
status) plus two JSON documents in the same row: ``params`` (:class:`Params`: the trigger's parameters, the segment,
the consent basis, the offer) and ``message`` (:class:`Content`: what the channel sends). :func:`parse` turns the
console's form into a :class:`CampaignSpec` or the list of what is wrong; :func:`from_docs` does the same for a
script's documents (raising :class:`marketing.errors.FieldInvalid`); :func:`parse_params` / :func:`parse_content`
read the stored documents back; :func:`problems` is the one set of rules, checked when the editor saves and again
at approval (against the configured SMS provider and its approved templates).

Every refusal is a :class:`Problem` with the field it concerns, a key the console translates
(:mod:`marketing.core.campaign_view`) and its parameters; nothing is stored or approved while one remains. The rules:

- **consent basis** (PIPL arts. 14, 16): a campaign names the consents it relies on, and they must cover what its
  sends need (:func:`marketing.core.contact.needed_purposes`): the channel's own marketing consent, the separate
  ``presence_offers`` consent for a presence trigger (movement tracks are sensitive personal information, PIPL
  art. 28), ``trade_area`` for a mall-wide campaign; none at all is refused;
- **SMS** (MIIT Order 31 and the provider, :mod:`marketing.core.sms_rules`): an approved template id (the
  campaign's own, or the one configured for its category), a category the provider allows, no word betraying a
  forbidden category, the provider's refusal suffix at the end;
- **an offer** (not for ``expiring``, whose offer names the coupons that expire): each treated member's send issues
  one coupon of it (marketing.execution); an SMS campaign may carry one only through a provider that allows coupon
  promotion by SMS (:func:`marketing.core.sms_rules.allows_offers`: not Tencent), and then the coupon goes to the
  member card only; :func:`with_coupon` puts the code into what the other channels send;
- WeChat needs its template id; a webhook an http(s) URL; a coupon-expiry trigger the offer whose coupons expire;
  a scheduled send its instant;
- the holdout is 1–50 % in the editor (a campaign without a control measures nothing), the window 1–90 days.

Triggers: ``login_first`` / ``login_return`` (the portal enqueues after a login commits), ``visit`` / ``dwell`` (a
member's visit started, or lasted ``dwell_minutes``; presence-triggered), ``lapsed`` (no visit or login for
``lapsed_days``), ``expiring`` (a coupon of ``offer_id`` ends within ``expiring_hours``), ``scheduled`` (one send
to the segment at ``send_at``; without an offset it is the store's local time).

A segment is a predicate on member facts, one condition a line (or joined by ``and``), stored as that text and
evaluated in SQL by :mod:`marketing.store.segments` (:func:`matches` is the same predicate on plain values)::

    visits >= 3
    last_visit_days <= 30
    store = starbucks
    tag in vip, student        (has any of the tags)
    tag not in staff           (has none of them)

A tag must be one some member carries (:func:`problems` with ``tags``: the console and
marketing.store.campaign_admin pass the known ones): an unknown tag is refused with the tag named.
"""
from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marketing.core import contact, sms_rules
from marketing.core import tags as tags_core
from marketing.errors import FieldInvalid

TRIGGERS: tuple[str, ...] = ("login_first", "login_return", "visit", "dwell", "lapsed", "expiring", "scheduled")
#: triggers fired by the sensor's presence data: they need the separate presence consent
PRESENCE_TRIGGERS = frozenset({"visit", "dwell"})
#: triggers evaluated by the beat over the whole segment (the others fire per member from an event)
BEAT_TRIGGERS = frozenset({"lapsed", "expiring", "scheduled"})
#: the parameter each trigger takes: (name, lowest, highest, default)
TRIGGER_PARAMS: Mapping[str, tuple[str, int, int, int]] = {
    "dwell": ("dwell_minutes", 1, 24 * 60, 20), "lapsed": ("lapsed_days", 1, 365, 30),
    "expiring": ("expiring_hours", 1, 30 * 24, 48)}
STATUSES: tuple[str, ...] = ("draft", "approved", "paused", "archived")
NUMERIC_FACTS = ("visits", "last_visit_days", "logins", "purchases", "redemptions")
TEXT_FACTS = ("store",)
#: ``tag in a, b`` (the member has any of the tags), ``tag not in a, b`` (none of them)
SET_FACTS = ("tag",)
_TAG_CONDITION = re.compile(r"\s*tag\s+(in|not\s+in)\s+(.+?)\s*$", re.IGNORECASE)
OPS = (">=", "<=", "!=", "=", ">", "<")
_CONDITION = re.compile(r"\s*([a-z_]+)\s*(>=|<=|!=|=|>|<)\s*(\S+)\s*$")
_SPLIT = re.compile(r"\n|\band\b", re.IGNORECASE)
MAX_MESSAGE = 500
#: the WeChat member card's message line (marketing.channels.wechat_card.MAX_TEXT)
MAX_CARD_TEXT = 12
MAX_TEMPLATE_ID = 64
MAX_URL = 500
#: where a campaign's text (or WeChat data, or link) wants the coupon's code
COUPON_PLACEHOLDER = "{coupon}"


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
class Params:
    """The trigger's parameters, the segment, the consent basis and the offer (``campaigns.params``)."""

    segment: tuple[Condition, ...] = ()
    lapsed_days: int = 30
    dwell_minutes: int = 20
    expiring_hours: int = 48
    offer_id: int | None = None
    #: a scheduled send's instant (naive: the store's local time)
    send_at: datetime | None = None
    #: pushes may carry a trade-area offer (issued by one store, redeemed at another); a mall's campaign always does
    trade_area: bool = False
    #: the member consents the campaign relies on (contact.PURPOSES)
    consents: frozenset[str] = frozenset()
    #: the SMS provider whose rules the text was written for (the configured one decides at approval)
    provider: str | None = None
    #: what one message costs (the report's iROAS)
    message_cost_cents: int = 0


@dataclass(frozen=True)
class Content:
    """What the channel sends (``campaigns.message``). ``text`` is the message as the member reads it (for SMS: the
    approved template's text with its parameters filled, ending with the provider's refusal suffix)."""

    text: str = ""
    #: the campaign's approved SMS template (empty: the one configured for its category)
    sms_template_id: str = ""
    sms_params: tuple[str, ...] = ()
    wechat_template_id: str = ""
    wechat_data: Mapping[str, str] = dataclasses.field(default_factory=dict)
    url: str = ""
    webhook_url: str = ""


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    #: exactly one of store_id (the store's campaign) and mall_id (a trade-area campaign)
    store_id: str | None
    mall_id: str | None
    trigger: str
    channel: str
    category: str
    params: Params
    content: Content
    control_share: float = 0.10
    window_days: int = 7
    cooldown_hours: int = 24

    def presence(self) -> bool:
        return self.trigger in PRESENCE_TRIGGERS

    @property
    def segment(self) -> tuple[Condition, ...]:
        return self.params.segment

    @property
    def message(self) -> str:
        return self.content.text

    @property
    def offer_id(self) -> int | None:
        return self.params.offer_id

    @property
    def consents(self) -> frozenset[str]:
        return self.params.consents

    def issues_coupon(self) -> bool:
        return issues_coupon(self.trigger, self.params.offer_id)

    def params_doc(self) -> str:
        return params_doc(self.params)

    def message_doc(self) -> str:
        return message_doc(self.content)


def issues_coupon(trigger: str, offer_id: int | None) -> bool:
    """Whether a send of this campaign issues a coupon of its offer (an ``expiring`` trigger's offer names the
    coupons that expire: it issues none)."""
    return offer_id is not None and trigger != "expiring"


def with_coupon(content: Content, channel: str, code: str) -> Content:
    """What the channel sends once the send's coupon ``code`` exists (pure). ``{coupon}`` in the text, the WeChat
    data's values and the link is replaced by the code; where it appears nowhere, the code is added: a line of its
    own after the text (the success page, the webhook), a ``coupon`` field in the WeChat template's data. An SMS is
    the approved template's text and the member card's message line holds 12 characters: both are left as they are
    (the coupon is on the member card)."""
    if channel in ("sms", "wechat_card"):
        return content
    ph = COUPON_PLACEHOLDER
    text = content.text.replace(ph, code) if ph in content.text else f"{content.text}\n{code}"
    data = {k: v.replace(ph, code) for k, v in content.wechat_data.items()}
    if channel == "wechat" and not any(ph in v for v in content.wechat_data.values()):
        if not data:  # the channel's default data is the text's beginning: keep it beside the code
            data = {"thing1": content.text.replace(ph, code)[:20]}
        data["coupon"] = code
    return dataclasses.replace(content, text=text, wechat_data=data, url=content.url.replace(ph, code))


def params_doc(p: Params) -> str:
    """``campaigns.params`` (JSON; the segment as its text)."""
    doc = dataclasses.asdict(p)
    doc["segment"] = segment_text(p.segment)
    doc["consents"] = sorted(p.consents)
    doc["send_at"] = p.send_at.isoformat(timespec="minutes") if p.send_at else None
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def message_doc(c: Content) -> str:
    """``campaigns.message`` (JSON)."""
    doc = dataclasses.asdict(c)
    doc["sms_params"] = list(c.sms_params)
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def parse_segment(text: str) -> tuple[tuple[Condition, ...], list[Problem]]:
    conditions: list[Condition] = []
    problems: list[Problem] = []
    for part in _SPLIT.split(text or ""):
        if not part.strip():
            continue
        t = _TAG_CONDITION.match(part)
        if t is not None:
            try:
                wanted = tags_core.split(t.group(2))
            except FieldInvalid:
                problems.append(Problem("segment", "err_segment_tag_text", {"text": t.group(2).strip()}))
                continue
            conditions.append(Condition("tag", "not in" if t.group(1).lower() != "in" else "in", ",".join(wanted)))
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
        elif fact in SET_FACTS:
            problems.append(Problem("segment", "err_segment_tag_op", {"op": op}))
        elif fact in TEXT_FACTS:
            if op not in ("=", "!="):
                problems.append(Problem("segment", "err_segment_op", {"fact": fact, "op": op}))
                continue
            conditions.append(Condition(fact, op, raw))
        else:
            problems.append(Problem("segment", "err_segment_fact", {
                "fact": fact, "facts": ", ".join(NUMERIC_FACTS + TEXT_FACTS + SET_FACTS)}))
    return tuple(conditions), problems


def matches(segment: Sequence[Condition], facts: Mapping[str, Any]) -> bool:
    """Whether a member with ``facts`` is in the segment (every condition holds; an empty segment holds for all):
    the predicate :func:`marketing.store.segments.conditions` renders in SQL. Numeric facts are numbers
    (``last_visit_days``: None for a member never seen counts as infinitely long ago); ``store`` is the member's
    first store; ``tags`` the member's tags."""
    for c in segment:
        value = facts.get(c.fact)
        if c.fact == "tag":
            held = set(facts.get("tags") or ())
            if bool(held & set(str(c.value).split(","))) != (c.op == "in"):
                return False
            continue
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


def unknown_tags(segment: Sequence[Condition], tags: frozenset[str]) -> list[str]:
    """The tags the segment names that are not in ``tags`` (the ones some member carries), sorted."""
    named = {t for c in segment if c.fact == "tag" for t in str(c.value).split(",")}
    return sorted(named - tags)


def problems(spec: CampaignSpec, *, sms_provider: str | None = None,
             sms_templates: Mapping[str, str] | None = None, tags: frozenset[str] | None = None) -> list[Problem]:
    """What may not be sent as specified (empty: nothing). ``sms_provider`` / ``sms_templates``: the configured
    provider and its approved template per category (at approval); without them, the spec's own provider and
    template id (the editor). ``tags``: the member tags that exist (a segment naming another is refused);
    None: not checked."""
    found: list[Problem] = []
    if tags is not None:
        unknown = unknown_tags(spec.params.segment, tags)
        if unknown:
            found.append(Problem("segment", "err_segment_tag", {"tags": ", ".join(unknown),
                                                                "known": ", ".join(sorted(tags)) or "—"}))
    p, c = spec.params, spec.content
    if spec.trigger not in TRIGGERS:
        found.append(Problem("trigger", "err_choice", {"choices": ", ".join(TRIGGERS)}))
    if spec.channel not in contact.CHANNELS:
        found.append(Problem("channel", "err_choice", {"choices": ", ".join(contact.CHANNELS)}))
    if spec.category not in sms_rules.CATEGORIES:
        found.append(Problem("category", "err_choice", {"choices": ", ".join(sms_rules.CATEGORIES)}))
    if (spec.store_id is None) == (spec.mall_id is None):
        found.append(Problem("scope", "err_scope_choice"))
    if spec.trigger == "expiring" and p.offer_id is None:
        found.append(Problem("offer_id", "err_offer_required"))
    if spec.trigger == "scheduled" and p.send_at is None:
        found.append(Problem("scheduled_at", "err_scheduled_at"))
    if not 1 <= len(c.text.strip()) <= MAX_MESSAGE:
        found.append(Problem("message", "err_message_len", {"max": MAX_MESSAGE}))
    if spec.channel == "sms":
        provider = sms_provider or p.provider or "tencent"
        if provider not in sms_rules.PROVIDERS:
            found.append(Problem("provider", "err_choice", {"choices": ", ".join(sorted(sms_rules.PROVIDERS))}))
        else:
            rules = sms_rules.rules_for(provider)
            for text in sms_rules.problems(provider, spec.category, c.text):
                if text.startswith("category"):
                    found.append(Problem("category", "err_sms_category", {"provider": provider,
                                                                          "category": spec.category}))
                elif "refusal suffix" in text:
                    found.append(Problem("message", "err_sms_suffix", {"suffix": rules.refusal_suffix}))
                else:
                    words = [w for w in rules.forbidden_words if w in c.text]
                    found.append(Problem("message", "err_sms_words", {"provider": provider,
                                                                      "words": "、".join(words)}))
        if not c.sms_template_id and spec.category not in (sms_templates or {}):
            found.append(Problem("template_id", "err_template_required"))
        if issues_coupon(spec.trigger, p.offer_id) and provider in sms_rules.PROVIDERS \
                and not sms_rules.allows_offers(provider):
            found.append(Problem("offer_id", "err_sms_offer", {"provider": provider}))
    elif spec.channel == "wechat" and not c.wechat_template_id:
        found.append(Problem("template_id", "err_template_required"))
    elif spec.channel == "wechat_card" and len(c.text.strip()) > MAX_CARD_TEXT:
        found.append(Problem("message", "err_card_text", {"max": MAX_CARD_TEXT}))
    elif spec.channel == "webhook" and not c.webhook_url.startswith(("https://", "http://")):
        found.append(Problem("webhook_url", "err_webhook_url"))
    unknown = sorted(x for x in p.consents if x not in contact.PURPOSES)
    if unknown:
        found.append(Problem("consents", "err_choice", {"choices": ", ".join(contact.PURPOSES)}))
    elif not p.consents:
        found.append(Problem("consents", "err_consent_basis"))
    elif spec.channel in contact.CHANNELS and spec.trigger in TRIGGERS:
        needed = contact.needed_purposes(contact.Send(0, 0, spec.channel, "UTC",  # type: ignore[arg-type,unused-ignore]
                                                      presence_triggered=spec.trigger in PRESENCE_TRIGGERS,
                                                      trade_area=p.trade_area or spec.mall_id is not None))
        missing = [x for x in needed if x not in p.consents]
        if missing:
            found.append(Problem("consents", "err_consent_missing", {"purposes": ", ".join(missing)}))
    return found


def parse(form: Mapping[str, Any], *, scopes: Mapping[str, tuple[str | None, str | None]],
          offers: frozenset[int], default_provider: str = "tencent",
          tags: frozenset[str] | None = None) -> tuple[CampaignSpec | None, list[Problem]]:
    """The console's form → a spec, or the problems. ``scopes``: the scope values the user may choose
    (``"store:s1"`` → ("s1", None), ``"mall:m1"`` → (None, "m1")); ``offers``: the offers they may attach.
    ``consents`` may be a list (checkboxes) or a comma-separated text."""
    found: list[Problem] = []
    name = str(form.get("name") or "").strip()
    if not 1 <= len(name) <= 200:
        found.append(Problem("name", "err_name_len"))
    scope = str(form.get("scope") or "")
    store_id, mall_id = scopes.get(scope, (None, None))
    if scope not in scopes:
        found.append(Problem("scope", "err_scope_choice"))
    trigger = str(form.get("trigger") or "")
    numbers: dict[str, int] = {}
    send_at: datetime | None = None
    if trigger in TRIGGER_PARAMS:
        pname, low, high, default = TRIGGER_PARAMS[trigger]
        numbers[pname] = _int(form, pname, low, high, default, found)
    elif trigger == "scheduled":
        try:
            send_at = datetime.fromisoformat(str(form.get("scheduled_at") or "").strip())
        except ValueError:
            found.append(Problem("scheduled_at", "err_scheduled_at"))
            send_at = datetime.min  # reported above; keeps the rules below from repeating it
    segment, seg_problems = parse_segment(str(form.get("segment") or ""))
    found += seg_problems
    channel = str(form.get("channel") or "")
    category = str(form.get("category") or "notice")
    message = str(form.get("message") or "").strip()
    template_id = str(form.get("template_id") or "").strip()
    if len(template_id) > MAX_TEMPLATE_ID or not template_id.isprintable():
        found.append(Problem("template_id", "err_template_id"))
        template_id = "-"
    webhook_url = str(form.get("webhook_url") or "").strip()
    if len(webhook_url) > MAX_URL:
        found.append(Problem("webhook_url", "err_webhook_url"))
        webhook_url = "https://-"
    provider = str(form.get("provider") or default_provider) if channel == "sms" else None
    offer_raw = str(form.get("offer_id") or "").strip()
    offer_id: int | None = None
    if offer_raw:
        if not offer_raw.isdigit() or int(offer_raw) not in offers:
            found.append(Problem("offer_id", "err_offer"))
            offer_id = -1  # reported above
        else:
            offer_id = int(offer_raw)
    raw_consents = form.get("consents") or []
    given = [x.strip() for x in raw_consents.split(",")] if isinstance(raw_consents, str) else list(raw_consents)
    share_pct = _int(form, "control_pct", 1, 50, 10, found)
    window = _int(form, "window_days", 1, 90, 7, found)
    cooldown = _int(form, "cooldown_hours", 0, 24 * 30, 24, found)
    cost = _int(form, "message_cost_cents", 0, 10_000, 0, found)
    spec = CampaignSpec(
        name=name, store_id=store_id, mall_id=mall_id, trigger=trigger, channel=channel, category=category,
        params=Params(segment=segment, offer_id=offer_id, send_at=send_at, trade_area=mall_id is not None,
                      consents=frozenset(x for x in given if x), provider=provider, message_cost_cents=cost,
                      **numbers),
        content=Content(text=message, sms_template_id=template_id if channel == "sms" else "",
                        wechat_template_id=template_id if channel == "wechat" else "",
                        webhook_url=webhook_url if channel == "webhook" else ""),
        control_share=share_pct / 100.0, window_days=window, cooldown_hours=cooldown)
    found += [x for x in problems(spec, tags=tags) if not (x.field == "scope" and scope not in scopes)]
    if found:
        return None, found
    return spec, []


def _json_int(raw: Mapping[str, Any], key: str, default: int | None, lo: int = 1) -> int | None:
    v = raw.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise FieldInvalid(key, f"expected an integer >= {lo}, got {v!r}")
    return int(v)


def _doc(raw: Mapping[str, Any] | str, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except ValueError:
        raise FieldInvalid(name, "expected a JSON object") from None
    if not isinstance(doc, dict):
        raise FieldInvalid(name, "expected a JSON object")
    return doc


def parse_params(raw: Mapping[str, Any] | str) -> Params:
    """``campaigns.params`` (or a script's document) → :class:`Params`; raises FieldInvalid naming the field."""
    doc = _doc(raw, "params")
    seg_raw = doc.get("segment") or ""
    if not isinstance(seg_raw, str):
        raise FieldInvalid("segment", "expected the segment's text (e.g. \"logins >= 2\")")
    segment, seg_problems = parse_segment(seg_raw)
    if seg_problems:
        raise FieldInvalid("segment", "; ".join(f"{p.key} {dict(p.params)}" for p in seg_problems))
    send_at = doc.get("send_at")
    when = None
    if send_at is not None:
        try:
            when = datetime.fromisoformat(str(send_at))
        except ValueError:
            raise FieldInvalid("send_at", f"expected an ISO 8601 instant, got {send_at!r}") from None
    trade = doc.get("trade_area", False)
    if not isinstance(trade, bool):
        raise FieldInvalid("trade_area", f"expected true or false, got {trade!r}")
    consents = doc.get("consents", [])
    if not isinstance(consents, list) or not all(isinstance(x, str) for x in consents):
        raise FieldInvalid("consents", "expected a list of purposes")
    provider = doc.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise FieldInvalid("provider", "expected text")
    return Params(segment=segment, lapsed_days=_json_int(doc, "lapsed_days", 30) or 30,
                  dwell_minutes=_json_int(doc, "dwell_minutes", 20) or 20,
                  expiring_hours=_json_int(doc, "expiring_hours", 48) or 48,
                  offer_id=_json_int(doc, "offer_id", None), send_at=when, trade_area=trade,
                  consents=frozenset(consents), provider=provider,
                  message_cost_cents=_json_int(doc, "message_cost_cents", 0, 0) or 0)


def parse_content(raw: Mapping[str, Any] | str) -> Content:
    """``campaigns.message`` (or a script's document) → :class:`Content`; raises FieldInvalid."""
    doc = _doc(raw, "message")
    for key in ("text", "sms_template_id", "wechat_template_id", "url", "webhook_url"):
        if not isinstance(doc.get(key, ""), str):
            raise FieldInvalid(key, "expected text")
    params = doc.get("sms_params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise FieldInvalid("sms_params", "expected a list of texts")
    data = doc.get("wechat_data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise FieldInvalid("wechat_data", "expected an object of texts")
    return Content(text=doc.get("text", ""), sms_template_id=doc.get("sms_template_id", ""),
                   sms_params=tuple(params), wechat_template_id=doc.get("wechat_template_id", ""),
                   wechat_data=dict(data), url=doc.get("url", ""), webhook_url=doc.get("webhook_url", ""))


def from_docs(*, name: str, trigger: str, channel: str, category: str, store_id: str | None = None,
              mall_id: str | None = None, params: Mapping[str, Any] | str | None = None,
              message: Mapping[str, Any] | str | None = None, control_share: float = 0.10, window_days: int = 7,
              cooldown_hours: int = 24) -> CampaignSpec:
    """A spec from a script's documents (the shapes of ``campaigns.params`` / ``campaigns.message``). Raises
    FieldInvalid for what cannot be read; the rules (:func:`problems`) are checked at approval."""
    if (store_id is None) == (mall_id is None):
        raise FieldInvalid("store_id", "a campaign belongs to one store or one mall")
    if not name.strip():
        raise FieldInvalid("name", "empty")
    if trigger not in TRIGGERS:
        raise FieldInvalid("trigger", f"expected one of {TRIGGERS}, got {trigger!r}")
    if not 0.0 <= control_share < 1.0:
        raise FieldInvalid("control_share", f"expected 0 <= share < 1, got {control_share!r}")
    if cooldown_hours < 0 or window_days < 1:
        raise FieldInvalid("cooldown_hours" if cooldown_hours < 0 else "window_days", "out of range")
    return CampaignSpec(name=name.strip(), store_id=store_id, mall_id=mall_id, trigger=trigger, channel=channel,
                        category=category, params=parse_params(params or {}), content=parse_content(message or {}),
                        control_share=control_share, window_days=window_days, cooldown_hours=cooldown_hours)


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
