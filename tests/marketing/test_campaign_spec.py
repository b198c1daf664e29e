"""A campaign's definition (marketing.core.campaign_spec), pure: the editor's form in, a spec or the problems out;
the stored documents read back (a bad field named); the same rules at approval against the configured SMS provider
and its templates; segments; the lifecycle's transitions; and the report's words and CSV (marketing.core.campaign_view)."""
from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from marketing.core import campaign_spec, campaign_view, lift
from marketing.core.campaign_spec import Condition, Content, Params
from marketing.errors import FieldInvalid

SCOPES: dict[str, tuple[str | None, str | None]] = {"store:s1": ("s1", None), "mall:m1": (None, "m1")}
FORM = {"name": " 回访 ", "scope": "store:s1", "trigger": "lapsed", "lapsed_days": "45", "channel": "sms",
        "category": "member_benefit", "provider": "aliyun", "message": "会员日积分翻倍 回T退订",
        "template_id": "SMS_1", "segment": "visits >= 2 and last_visit_days >= 45\nstore = s1",
        "consents": ["sms_marketing"], "offer_id": "7"}


def parse(**changes: Any) -> tuple[campaign_spec.CampaignSpec | None, list[tuple[str, str]]]:
    spec, problems = campaign_spec.parse({**FORM, **changes}, scopes=SCOPES, offers=frozenset({7}))
    return spec, [(p.field, p.key) for p in problems]


def test_a_good_form_gives_the_spec_with_the_defaults() -> None:
    spec, problems = parse()
    assert problems == [] and spec is not None
    assert (spec.name, spec.store_id, spec.mall_id, spec.params.lapsed_days) == ("回访", "s1", None, 45)
    assert spec.segment == (Condition("visits", ">=", 2), Condition("last_visit_days", ">=", 45),
                            Condition("store", "=", "s1"))
    assert (spec.control_share, spec.window_days, spec.cooldown_hours, spec.offer_id) == (0.10, 7, 24, 7)
    assert spec.content == Content(text="会员日积分翻倍 回T退订", sms_template_id="SMS_1")
    # what the campaigns row keeps, and what the executor reads back: the same spec
    doc = json.loads(spec.params_doc())
    assert doc["segment"] == "visits >= 2\nlast_visit_days >= 45\nstore = s1" and doc["consents"] == ["sms_marketing"]
    assert campaign_spec.parse_params(spec.params_doc()) == spec.params
    assert campaign_spec.parse_content(spec.message_doc()) == spec.content


@pytest.mark.parametrize(("changes", "expected"), [
    ({"consents": []}, [("consents", "err_consent_basis")]),
    ({"consents": "sms_marketing, nonsense"}, [("consents", "err_choice")]),
    ({"trigger": "visit"}, [("consents", "err_consent_missing")]),
    ({"trigger": "visit", "consents": ["sms_marketing", "presence_offers"]}, []),
    ({"scope": "mall:m1"}, [("consents", "err_consent_missing")]),
    ({"scope": "store:s9"}, [("scope", "err_scope_choice")]),
    ({"provider": "tencent"}, [("message", "err_sms_suffix"), ("offer_id", "err_sms_offer")]),
    ({"provider": "tencent", "offer_id": ""}, [("message", "err_sms_suffix")]),
    ({"provider": "tencent", "offer_id": "", "message": "会员日积分翻倍 拒收请回复R"}, []),
    # Tencent forbids coupon promotion by SMS: an SMS campaign with an offer is refused (Aliyun: the card only)
    ({"provider": "tencent", "offer_id": "7", "message": "会员日积分翻倍 拒收请回复R"}, [("offer_id", "err_sms_offer")]),
    ({"provider": "console", "offer_id": "7", "message": "会员日积分翻倍 拒收请回复R"}, [("offer_id", "err_sms_offer")]),
    # the offer of a coupon-expiry reminder names the coupons that expire: it issues none
    ({"provider": "tencent", "trigger": "expiring", "message": "会员日积分翻倍 拒收请回复R"}, []),
    ({"provider": "tencent", "category": "visit_invite", "message": "欢迎 拒收请回复R", "offer_id": ""},
     [("category", "err_sms_category")]),
    ({"provider": "tencent", "category": "notice", "message": "新券到了 拒收请回复R", "offer_id": ""},
     [("message", "err_sms_words")]),
    ({"provider": "nobody"}, [("provider", "err_choice")]),
    ({"channel": "wechat", "consents": ["wechat_marketing"], "template_id": ""},
     [("template_id", "err_template_required")]),
    ({"channel": "splash", "consents": ["marketing"], "template_id": "", "message": "欢迎"}, []),
    ({"trigger": "scheduled", "scheduled_at": "tomorrow"}, [("scheduled_at", "err_scheduled_at")]),
    ({"trigger": "scheduled", "scheduled_at": "2026-12-24T10:00"}, []),
    ({"trigger": "dwell", "dwell_minutes": "0", "consents": ["sms_marketing", "presence_offers"]},
     [("dwell_minutes", "err_range")]),
    ({"offer_id": "8"}, [("offer_id", "err_offer")]),
    ({"segment": "visits >> 2"}, [("segment", "err_segment_syntax")]),
    ({"segment": "store > s1"}, [("segment", "err_segment_op")]),
    ({"segment": "tag = vip"}, [("segment", "err_segment_tag_op")]),
    ({"segment": "tag in v!p"}, [("segment", "err_segment_tag_text")]),
    ({"segment": "tag in vip, student"}, []),
    ({"segment": "likes = cats"}, [("segment", "err_segment_fact")]),
    ({"channel": "webhook", "consents": ["marketing"], "template_id": ""}, [("webhook_url", "err_webhook_url")]),
    ({"channel": "webhook", "consents": ["marketing"], "webhook_url": "https://crm.example/hook"}, []),
    ({"channel": "wechat_card", "consents": ["wechat_marketing"], "template_id": "", "message": "满100减20券已到账"},
     []),
    ({"channel": "wechat_card", "consents": ["wechat_marketing"], "template_id": "", "message": "会员日全场积分双倍欢迎光临"},
     [("message", "err_card_text")]),
    ({"channel": "wechat_card", "consents": ["marketing"], "template_id": "", "message": "新券"},
     [("consents", "err_consent_missing")]),
    ({"control_pct": "51"}, [("control_pct", "err_range")]),
    ({"message": "x" * 501}, [("message", "err_message_len"), ("message", "err_sms_suffix")]),
])
def test_problems(changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    spec, problems = parse(**changes)
    assert problems == expected
    assert (spec is None) == bool(expected)


@pytest.mark.parametrize(("channel", "content", "expected"), [
    ("splash", Content(text="送你 {coupon}，满50减10"), Content(text="送你 7K2M-Q9XD，满50减10")),
    ("splash", Content(text="欢迎回来"), Content(text="欢迎回来\n7K2M-Q9XD")),
    ("webhook", Content(text="hi", url="https://x.example/c/{coupon}"),
     Content(text="hi\n7K2M-Q9XD", url="https://x.example/c/7K2M-Q9XD")),
    ("wechat", Content(text="礼", wechat_template_id="T", wechat_data={"thing1": "礼", "code2": "{coupon}"}),
     Content(text="礼\n7K2M-Q9XD", wechat_template_id="T", wechat_data={"thing1": "礼", "code2": "7K2M-Q9XD"})),
    ("wechat", Content(text="礼", wechat_template_id="T"),
     Content(text="礼\n7K2M-Q9XD", wechat_template_id="T", wechat_data={"thing1": "礼", "coupon": "7K2M-Q9XD"})),
    # an SMS is its approved template: the coupon is on the member card only
    ("sms", Content(text="会员日 回T退订 {coupon}", sms_params=("x",)), Content(text="会员日 回T退订 {coupon}",
                                                                              sms_params=("x",))),
])
def test_with_coupon_puts_the_code_where_the_channel_allows(channel: str, content: Content,
                                                           expected: Content) -> None:
    assert campaign_spec.with_coupon(content, channel, "7K2M-Q9XD") == expected


def test_tag_conditions_parse_print_and_match() -> None:
    segment, problems = campaign_spec.parse_segment("tag in VIP, student,vip\nTAG NOT IN staff and visits >= 1")
    assert problems == []
    assert segment == (Condition("tag", "in", "student,vip"), Condition("tag", "not in", "staff"),
                       Condition("visits", ">=", 1))
    assert campaign_spec.segment_text(segment) == "tag in student,vip\ntag not in staff\nvisits >= 1"
    assert campaign_spec.parse_segment(campaign_spec.segment_text(segment)) == (segment, [])
    assert campaign_spec.matches(segment, {"tags": {"vip"}, "visits": 1})
    assert not campaign_spec.matches(segment, {"tags": {"vip", "staff"}, "visits": 1})  # has one it must not
    assert not campaign_spec.matches(segment, {"tags": set(), "visits": 1})  # has none of vip, student
    assert campaign_spec.unknown_tags(segment, frozenset({"vip", "staff"})) == ["student"]


def test_an_unknown_tag_is_refused_at_creation_with_the_tag_named() -> None:
    spec, problems = campaign_spec.parse({**FORM, "segment": "tag in vip, vipp"}, scopes=SCOPES,
                                         offers=frozenset({7}), tags=frozenset({"vip", "student"}))
    assert spec is None
    assert [(p.field, p.key, dict(p.params)) for p in problems] == [
        ("segment", "err_segment_tag", {"tags": "vipp", "known": "student, vip"})]
    assert "vipp" in campaign_view.problem_text("en", problems[0].key, problems[0].params)


@pytest.mark.parametrize(("text", "tag"), [("VIP", "vip"), ("ＶＩＰ", "vip"), (" 团购 ", "团购"), ("a_b-1", "a_b-1")])
def test_tags_are_normalized(text: str, tag: str) -> None:
    from marketing.core import tags

    assert tags.normalize(text) == tag


@pytest.mark.parametrize("text", ["", "-vip", "v ip", "v!p", "x" * 33, "a,b"])
def test_bad_tags_are_refused(text: str) -> None:
    from marketing.core import tags

    with pytest.raises(FieldInvalid, match="tag"):
        tags.normalize(text)


def test_status_transitions() -> None:
    assert campaign_spec.next_status("approve", "draft") == "approved"
    assert campaign_spec.next_status("approve", "paused") == "approved"
    assert campaign_spec.next_status("pause", "approved") == "paused"
    assert campaign_spec.next_status("pause", "draft") is None
    assert campaign_spec.next_status("archive", "archived") is None
    assert campaign_spec.next_status("delete", "draft") is None


def test_catalogs_hold_the_same_keys_and_every_problem_key_is_translated() -> None:
    zh, en = campaign_view.CATALOG["zh-CN"], campaign_view.CATALOG["en"]
    assert set(zh) == set(en)
    keys = {"err_consent_basis", "err_consent_missing", "err_sms_category", "err_sms_words", "err_sms_suffix",
            "err_choice", "err_range", "err_segment_syntax", "err_segment_number", "err_segment_op",
            "err_segment_fact", "err_template_required", "err_offer", "err_offer_required", "err_scope_choice",
            "err_share_locked", "err_not_editable", "err_transition", "err_scheduled_at", "err_name_len",
            "err_message_len", "err_template_id", "err_webhook_url", "err_approval", "err_card_text"}
    assert keys <= set(en)
    assert campaign_view.t("en", "back") == "Back"  # the console's own words fall through
    assert campaign_view.t("en", "no_such_key") == "⟦no_such_key⟧"
    assert campaign_view.reason_text("zh-CN", "no_consent:sms_marketing") == "未同意：短信营销"
    assert campaign_view.reason_text("en", "no_card") == "no activated WeChat member card"
    assert campaign_view.reason_text("en", "provider_hours") == "hours the provider forbids"


def test_report_view_and_csv_keep_incremental_beside_attributed() -> None:
    rng = [1.0] * 30 + [0.0] * 70
    report = lift.analyse(lift.Outcomes.of(rng, rng[:], [5000.0] * 30 + [0.0] * 70),
                          lift.Outcomes.of([1.0] * 2 + [0.0] * 18, [0.0] * 20, [0.0] * 20), cost_cents=2000)
    counts = {"eligible": 120, "treatment": 100, "control": 20, "sent": 90, "delivered": 80, "redeemed": 12,
              "discount_cents": 1500, "cost_cents": 2000, "suppressed": {"quiet_hours": 10},
              "attributed_buyers": 25, "attributed_revenue_cents": 140000, "attributed_redemptions": 12}
    view = campaign_view.report_view("en", {"id": 1, "name": "c"}, counts, report)
    inc = next(t for t in view["tables"] if t["id"] == "incremental")
    assert inc["columns"] == ["Metric", "Incremental [95 % CI]", "Attributed (last touch)"]
    text = campaign_view.to_csv(view)
    assert text.startswith("\ufeff")
    rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if r}
    assert rows["Buying members"][3] == "25" and float(rows["Buying members"][0]) == pytest.approx(30.0)
    assert rows["Revenue"][3] == "140000" and float(rows["Revenue"][0]) == pytest.approx(150000.0)
    assert rows["Visit rate"][:2] == ["0.3", "0.1"]
    assert float(rows["iROAS (incremental revenue ÷ cost) / ROAS"][0]) == pytest.approx(75.0)
    assert rows["iROAS (incremental revenue ÷ cost) / ROAS"][3] == "70"


@pytest.mark.parametrize(("text", "facts", "expected"), [
    ("", {}, True),
    ("visits >= 3", {"visits": 3}, True),
    ("visits >= 3", {"visits": 2}, False),
    ("visits > 3 and purchases = 0", {"visits": 4}, True),
    ("last_visit_days >= 30", {"last_visit_days": None}, True),
    ("last_visit_days < 30", {"last_visit_days": None}, False),
    ("store = s1\nredemptions != 0", {"store": "s1", "redemptions": 1}, True),
    ("store != s1", {"store": "s1"}, False),
    ("store != s1", {}, True),
])
def test_segment_matches(text: str, facts: dict[str, Any], expected: bool) -> None:
    segment, problems = campaign_spec.parse_segment(text)
    assert problems == []
    assert campaign_spec.matches(segment, facts) is expected


def test_problems_name_categories_and_consents_in_words() -> None:
    assert campaign_view.problem_text("en", "err_consent_missing", {"purposes": "sms_marketing, trade_area"}) == (
        "The consent basis does not cover the sends; add: SMS marketing, Trade-area offers.")
    assert campaign_view.problem_text("zh-CN", "err_sms_category", {"provider": "tencent", "category": "winback"}
                                      ).startswith("tencent 不允许通过短信发送“用户召回”类内容")


# -- the stored documents and approval -----------------------------------------------------------------------------

TEMPLATES = {"member_benefit": "2000101"}


def approval(trigger: str = "login_first", channel: str = "splash", category: str = "notice",
             params: dict[str, Any] | None = None, message: dict[str, Any] | None = None,
             mall: bool = False) -> list[tuple[str, str]]:
    spec = campaign_spec.from_docs(name="c", trigger=trigger, channel=channel, category=category,
                                   store_id=None if mall else "s1", mall_id="m1" if mall else None,
                                   params={"consents": ["marketing", "sms_marketing", "wechat_marketing"],
                                           **(params or {})},
                                   message={"text": "hello", **(message or {})})
    return [(p.field, p.key) for p in campaign_spec.problems(spec, sms_provider="tencent", sms_templates=TEMPLATES)]


def test_params_parse_with_defaults_and_a_segment() -> None:
    p = campaign_spec.parse_params('{"segment": "store = s1\\nlogins >= 2", "send_at": "2026-12-07T10:00:00+08:00", '
                                   '"trade_area": true, "consents": ["marketing"]}')
    assert p == Params(segment=(Condition("store", "=", "s1"), Condition("logins", ">=", 2)),
                       send_at=datetime(2026, 12, 7, 2, 0, tzinfo=UTC), trade_area=True,
                       consents=frozenset({"marketing"}))
    assert campaign_spec.parse_params({}) == Params()
    # a naive instant is the store's local time (marketing.execution localizes it)
    assert campaign_spec.parse_params({"send_at": "2026-12-07T10:00"}).send_at == datetime(2026, 12, 7, 10, 0)


@pytest.mark.parametrize(("raw", "field"), [
    ({"segment": "visits_per_week >= 2"}, "segment"),
    ({"segment": {"min_logins": 2}}, "segment"),
    ({"lapsed_days": 0}, "lapsed_days"),
    ({"dwell_minutes": "20"}, "dwell_minutes"),
    ({"send_at": "tomorrow"}, "send_at"),
    ({"trade_area": "yes"}, "trade_area"),
    ({"consents": "marketing"}, "consents"),
    ({"message_cost_cents": -1}, "message_cost_cents"),
    ("[1]", "params"),
    ("{", "params"),
])
def test_bad_params_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(FieldInvalid) as exc:
        campaign_spec.parse_params(raw)
    assert exc.value.field == field


@pytest.mark.parametrize(("raw", "field"), [
    ({"text": 5}, "text"), ({"sms_params": "a"}, "sms_params"), ({"sms_params": [1]}, "sms_params"),
    ({"wechat_data": {"a": 1}}, "wechat_data"), ({"webhook_url": None}, "webhook_url"),
    ({"sms_template_id": 7}, "sms_template_id"),
])
def test_bad_content_names_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(FieldInvalid) as exc:
        campaign_spec.parse_content(raw)
    assert exc.value.field == field


@pytest.mark.parametrize(("kw", "field"), [
    ({"store_id": None}, "store_id"), ({"mall_id": "m1"}, "store_id"), ({"name": " "}, "name"),
    ({"trigger": "birthday"}, "trigger"), ({"control_share": 1.0}, "control_share"),
    ({"window_days": 0}, "window_days"), ({"cooldown_hours": -1}, "cooldown_hours"),
])
def test_from_docs_refuses_what_it_cannot_store(kw: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"name": "c", "trigger": "lapsed", "channel": "splash", "category": "notice",
                            "store_id": "s1", **kw}
    with pytest.raises(FieldInvalid) as exc:
        campaign_spec.from_docs(**args)
    assert exc.value.field == field


def test_approval_checks_the_same_rules_against_the_configured_provider() -> None:
    assert approval() == []
    assert approval(channel="fax") == [("channel", "err_choice")]
    assert approval(trigger="expiring") == [("offer_id", "err_offer_required")]
    assert approval(trigger="scheduled") == [("scheduled_at", "err_scheduled_at")]
    assert approval(message={"text": " "}) == [("message", "err_message_len")]
    assert approval(channel="wechat") == [("template_id", "err_template_required")]
    assert approval(channel="wechat", message={"wechat_template_id": "T1"}) == []
    assert approval(channel="webhook", message={"webhook_url": "ftp://x"}) == [("webhook_url", "err_webhook_url")]
    # consent basis: none, or not covering a presence trigger or a trade-area campaign
    assert approval(params={"consents": []}) == [("consents", "err_consent_basis")]
    assert approval(trigger="dwell") == [("consents", "err_consent_missing")]
    assert approval(mall=True) == [("consents", "err_consent_missing")]
    assert approval(params={"trade_area": True, "consents": ["marketing", "trade_area"]}) == []
    # SMS: Tencent's suffix, its forbidden categories, an approved template (the campaign's or the configured one)
    sms = {"text": "积分双倍，拒收请回复R"}
    assert approval(channel="sms", category="member_benefit", message=sms) == []
    assert approval(channel="sms", category="notice", message=sms) == [("template_id", "err_template_required")]
    assert approval(channel="sms", category="notice", message={**sms, "sms_template_id": "2000777"}) == []
    assert approval(channel="sms", category="member_benefit", message={"text": "积分双倍"}) == [
        ("message", "err_sms_suffix")]
    assert ("category", "err_sms_category") in approval(channel="sms", category="winback",
                                                        message={"text": "好久不见，拒收请回复R"})
