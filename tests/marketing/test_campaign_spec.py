"""The campaign's specification and approval (pure), the webhook's signature (pure) and the WeChat template body."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketing.channels import Outgoing
from marketing.channels.wechat import template_body
from marketing.core import campaign as spec
from marketing.core import webhook
from marketing.core.campaign import Content, Params, Segment
from marketing.errors import FieldInvalid

TEMPLATES = {"member_benefit": "2000101"}


def problems(trigger: str = "login_first", channel: str = "splash", category: str = "notice",
             params: Params | None = None, content: Content | None = None) -> list[str]:
    return spec.approval_problems(trigger, channel, category, params or Params(),
                                  content or Content(text="hello"), "tencent", TEMPLATES)


def test_params_parse_with_defaults_and_a_segment() -> None:
    p = spec.parse_params('{"segment": {"store_id": "s1", "min_logins": 2, "not_seen_days": 30}, '
                          '"send_at": "2026-12-07T10:00:00+08:00", "trade_area": true}')
    assert p == Params(segment=Segment(store_id="s1", min_logins=2, not_seen_days=30),
                       send_at=datetime(2026, 12, 7, 2, 0, tzinfo=UTC), trade_area=True)
    assert spec.parse_params({}) == Params()


@pytest.mark.parametrize(("raw", "field"), [
    ({"segment": {"visits_per_week": 2}}, "segment.visits_per_week"),
    ({"segment": {"min_logins": -1}}, "min_logins"),
    ({"segment": {"min_logins": True}}, "min_logins"),
    ({"segment": {"store_id": 5}}, "segment.store_id"),
    ({"segment": []}, "segment"),
    ({"lapsed_days": 0}, "lapsed_days"),
    ({"dwell_minutes": "20"}, "dwell_minutes"),
    ({"send_at": "tomorrow"}, "send_at"),
    ({"send_at": "2026-12-07T10:00:00"}, "send_at"),
    ({"trade_area": "yes"}, "trade_area"),
])
def test_bad_params_name_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(FieldInvalid) as exc:
        spec.parse_params(raw)
    assert exc.value.field == field


@pytest.mark.parametrize(("raw", "field"), [
    ({"text": 5}, "text"), ({"sms_params": "a"}, "sms_params"), ({"sms_params": [1]}, "sms_params"),
    ({"wechat_data": {"a": 1}}, "wechat_data"), ({"webhook_url": None}, "webhook_url"),
])
def test_bad_content_names_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(FieldInvalid) as exc:
        spec.parse_content(raw)
    assert exc.value.field == field


def test_approval() -> None:
    assert problems() == []
    assert problems(trigger="birthday")[0].startswith("trigger:")
    assert problems(channel="fax")[0].startswith("channel:")
    assert problems(trigger="expiring") == ["offer_id: an expiring-coupon campaign names its offer"]
    assert problems(trigger="scheduled") == ["send_at: a scheduled campaign says when"]
    assert problems(content=Content(text=" ")) == ["text: empty"]
    assert problems(channel="wechat", content=Content()) == [
        "wechat_template_id: a WeChat template message needs its template"]
    assert problems(channel="webhook", content=Content(text="x", webhook_url="ftp://x")) == [
        "webhook_url: expected an http(s) URL"]
    # SMS: Tencent's suffix, its forbidden categories, an approved template for the category
    assert problems(channel="sms", category="member_benefit", content=Content(text="积分双倍，拒收请回复R")) == []
    assert problems(channel="sms", category="notice", content=Content(text="积分双倍，拒收请回复R")) == [
        "sms template: no approved tencent template for 'notice' messages"]
    assert problems(channel="sms", category="member_benefit", content=Content(text="积分双倍")) == [
        "text: must end with the refusal suffix '拒收请回复R'"]
    assert any("forbids 'winback'" in p for p in problems(channel="sms", category="winback",
                                                          content=Content(text="好久不见，拒收请回复R")))


def test_lifecycle_transitions() -> None:
    assert spec.TRANSITIONS["draft"] == {"approved", "archived"}
    assert spec.TRANSITIONS["archived"] == frozenset()
    assert all(set(nxt) <= set(spec.STATUSES) for nxt in spec.TRANSITIONS.values())


BODY = b'{"campaign_id": 1, "member_id": 7}'


def test_webhook_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    h = webhook.headers("k3y", 1765000000, BODY, "keliu-1-0-7")
    assert h[webhook.SIGNATURE] == "v1=" + hmac.new(b"k3y", b"1765000000." + BODY, hashlib.sha256).hexdigest()
    assert h[webhook.IDEMPOTENCY] == webhook.idempotency_key(1, 0, 7) == "keliu-1-0-7"
    assert webhook.verify("k3y", h, BODY, 1765000100)


@pytest.mark.parametrize("change", ["secret", "body", "timestamp", "stale", "future", "missing", "garbage"])
def test_webhook_verify_refuses_forgeries(change: str) -> None:
    h = webhook.headers("k3y", 1765000000, BODY, "keliu-1-0-7")
    secret, body, now = "k3y", BODY, 1765000000.0
    if change == "secret":
        secret = "other"
    elif change == "body":
        body = BODY.replace(b"7", b"8")
    elif change == "timestamp":
        h[webhook.TIMESTAMP] = "1765000001"
    elif change == "stale":
        now += webhook.TOLERANCE_S + 1
    elif change == "future":
        now -= webhook.TOLERANCE_S + 1
    elif change == "missing":
        del h[webhook.SIGNATURE]
    else:
        h[webhook.TIMESTAMP] = "17650e5"
    assert not webhook.verify(secret, h, body, now)


def test_wechat_template_body_as_wechat_documents_it() -> None:
    msg = Outgoing(3, 0, 7, "notice", Content(text="积分到账", wechat_template_id="T1", url="https://x/y",
                                              wechat_data={"thing1": "积分", "time2": "12:00"}), "keliu-3-0-7",
                   address="oABC")
    assert template_body(msg) == {"touser": "oABC", "template_id": "T1", "url": "https://x/y",
                                  "client_msg_id": "keliu-3-0-7",
                                  "data": {"thing1": {"value": "积分"}, "time2": {"value": "12:00"}}}
    bare = Outgoing(3, 0, 7, "notice", Content(text="积分到账", wechat_template_id="T1"), "k", address="o")
    assert template_body(bare)["data"] == {"thing1": {"value": "积分到账"}} and "url" not in template_body(bare)
