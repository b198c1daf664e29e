"""A campaign with an attached offer issues the treated member's coupon when it sends (marketing.execution,
marketing.store.coupons.issue_for_send), on SQLite and PostgreSQL: once per send however often it is retried or
re-leased, through the coupon issuing code (the offer's validity and limits), with its code in the message where
the channel allows it; a control member gets none; an offer that cannot issue suppresses the send with the
reason; the report's "redeemed" counts the campaign's own coupons."""
from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu.tasks import PortalSms
from keliu.testing.wechat_fake import FakeAccounts, FakeServer
from marketing import execution
from marketing.channels import splash
from marketing.channels.sms import SmsChannel
from marketing.channels.webhook import WebhookChannel
from marketing.channels.wechat import WechatChannel
from marketing.core import campaign_spec, codes, holdout
from marketing.errors import CampaignRefused
from marketing.store import campaign_admin, campaign_report, coupons
from marketing.store.campaigns import campaign_sends, campaigns, contact_counts
from marketing.store.models import coupons as coupons_t
from portal.edges.sms_backends import ConsoleSms
from portal.store.marketing_members import PortalMembers
from tests.marketing.campaign_kit import ADMIN, new_campaign, send_row
from tests.marketing.conftest import MEMBER_YES, NOW, tcoupon, toffer, tredeem
from tests.marketing.receivers import WebhookReceiver

pytestmark = pytest.mark.integration
TEMPLATES = {"member_benefit": "2000101"}


def deps(engine: Engine, **channels: Any) -> execution.Deps:
    return execution.Deps(engine=engine, contacts=PortalMembers(), channels=channels, lease=timedelta(seconds=60))


def member_coupons(engine: Engine, member: int) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(coupons_t).where(coupons_t.c.member_id == member)
                                 .order_by(coupons_t.c.id)).mappings())



def test_a_splash_send_issues_one_coupon_and_shows_its_code_even_when_re_leased(engine: Engine) -> None:
    offer = toffer(engine)
    cid = new_campaign(engine, NOW, trigger="login_first", channel="splash", params={"offer_id": offer},
                       message={"text": "新会员礼：{coupon} 满50减10"})
    d = deps(engine)
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW).status == "sent"
    held = member_coupons(engine, MEMBER_YES)
    assert len(held) == 1
    c = held[0]
    assert (c["offer_id"], c["channel"], c["issued_by"], c["store_id"]) == (
        offer, "campaign", f"keliu-{cid}-0-{MEMBER_YES}", "s1")
    assert send_row(engine, cid, MEMBER_YES)["coupon_id"] == c["id"]
    display = codes.display(c["code"])
    with engine.connect() as conn:
        assert [m["text"] for m in splash.pending(conn, MEMBER_YES)] == [f"新会员礼：{display} 满50减10"]
    # the same send again: a duplicate, no second coupon
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW) == execution.Result("duplicate", "sent")
    # a send whose worker died before ``sent``: re-leased later, it finds its coupon and issues none
    s = campaign_sends
    with engine.begin() as conn:
        conn.execute(sa.update(s).where(s.c.campaign_id == cid).values(status="sending", lease_until=NOW))
    later = NOW + timedelta(minutes=5)
    assert execution.deliver(d, cid, MEMBER_YES, 0, later).status == "sent"
    assert [x["id"] for x in member_coupons(engine, MEMBER_YES)] == [c["id"]]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT issued FROM member_offers WHERE member_id = :m"),
                            {"m": MEMBER_YES}).scalar_one() == 1
        assert conn.execute(sa.text("SELECT issued_count FROM offers WHERE id = :o"), {"o": offer}).scalar_one() == 1


def test_a_control_member_gets_no_coupon_and_their_would_have_sent_is_recorded(engine: Engine) -> None:
    offer = toffer(engine)
    salt = next(f"s{i}" for i in range(1000) if holdout.assign(f"s{i}".encode(), MEMBER_YES, 0.5) == "control")
    cid = new_campaign(engine, NOW, trigger="login_first", channel="splash", params={"offer_id": offer},
                       control_share=0.5, salt=salt)
    r = execution.deliver(deps(engine), cid, MEMBER_YES, 0, NOW)
    assert r.status == "control"
    assert send_row(engine, cid, MEMBER_YES)["status"] == "control" and send_row(engine, cid, MEMBER_YES)["coupon_id"] is None
    assert member_coupons(engine, MEMBER_YES) == []


@pytest.mark.parametrize(("offer_fields", "held_before", "reason"), [
    ({}, 1, "offer:member_limit"),                                                   # one a member, held already
    ({"max_issued": 1, "per_member_issue_limit": 5}, 1, "offer:issue_limit"),         # the offer is exhausted
    ({"valid_days": None, "valid_from": "2026-11-01", "valid_to": "2026-11-30"}, 0, "offer:expired"),
])
def test_an_offer_that_cannot_issue_suppresses_the_send_with_its_reason(
        engine: Engine, offer_fields: dict[str, Any], held_before: int, reason: str) -> None:
    offer = toffer(engine, **offer_fields)
    if held_before:
        tcoupon(engine, offer)
    clock = [NOW.timestamp()]
    with WebhookReceiver(clock=lambda: clock[0]) as rx:
        cid = new_campaign(engine, NOW, trigger="scheduled", channel="webhook",
                           params={"send_at": NOW.isoformat(), "offer_id": offer},
                           message={"text": "本周会员礼", "webhook_url": rx.url})
        r = execution.deliver(deps(engine, webhook=WebhookChannel(timeout_s=5)), cid, MEMBER_YES, 0, NOW)
        assert (r.status, r.reason) == ("suppressed", reason)
        assert rx.calls == 0  # never a message promising a coupon that does not exist
    row = send_row(engine, cid, MEMBER_YES)
    assert (row["status"], row["reason"], row["coupon_id"], row["lease_until"]) == ("suppressed", reason, None, None)
    assert len(member_coupons(engine, MEMBER_YES)) == held_before
    with engine.connect() as conn:  # its place under the day's caps was given back
        assert set(conn.execute(sa.select(contact_counts.c.n).where(
            contact_counts.c.member_id == MEMBER_YES)).scalars()) == {0}
    assert execution.counts(engine, cid)["suppressed"] == {reason: 1}


def test_the_webhook_and_wechat_carry_the_coupon(engine: Engine) -> None:
    offer = toffer(engine, per_member_issue_limit=5)
    clock = [NOW.timestamp()]
    with WebhookReceiver(clock=lambda: clock[0]) as rx:
        cid = new_campaign(engine, NOW, trigger="scheduled", channel="webhook",
                           params={"send_at": NOW.isoformat(), "offer_id": offer},
                           message={"text": "本周会员礼", "webhook_url": rx.url})
        with engine.connect() as conn:
            rx.secrets[cid] = conn.execute(sa.select(campaigns.c.webhook_secret)
                                           .where(campaigns.c.id == cid)).scalar_one()
        assert execution.deliver(deps(engine, webhook=WebhookChannel(timeout_s=5)), cid, MEMBER_YES, 0,
                                 NOW).status == "sent"
        body = rx.delivered[f"keliu-{cid}-0-{MEMBER_YES}"]
    code = codes.display(member_coupons(engine, MEMBER_YES)[0]["code"])
    assert body["text"] == f"本周会员礼\n{code}" and body["coupon"]["code"] == code
    acc = FakeAccounts()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE members SET wechat_openid = 'oMEMBER1' WHERE id = :i"), {"i": MEMBER_YES})
    with FakeServer(accounts=acc) as fake:
        ch = WechatChannel(fake.url, acc.oauth_app_id, acc.oauth_secret, timeout_s=5)
        wid = new_campaign(engine, NOW, trigger="login_first", channel="wechat", params={"offer_id": offer},
                           message={"text": "会员礼", "wechat_template_id": "TPL1",
                                    "wechat_data": {"thing1": "会员礼", "character_string2": "{coupon}"},
                                    "url": "https://example.com/m?c={coupon}"})
        assert execution.deliver(deps(engine, wechat=ch), wid, MEMBER_YES, 0, NOW).status == "sent"
        wcode = codes.display(member_coupons(engine, MEMBER_YES)[1]["code"])
        [sent] = fake.state.templates
    assert sent["data"] == {"thing1": {"value": "会员礼"}, "character_string2": {"value": wcode}}
    assert sent["url"] == f"https://example.com/m?c={wcode}"


def test_sms_with_an_offer_is_refused_where_the_provider_forbids_coupons_else_the_coupon_goes_to_the_card(
        engine: Engine) -> None:
    offer = toffer(engine)
    text = "会员日全场积分双倍，拒收请回复R"
    cid = new_campaign(engine, NOW, trigger="lapsed", channel="sms", params={"offer_id": offer},
                       message={"text": text}, approve=False)
    with pytest.raises(CampaignRefused) as exc:
        campaign_admin.transition(engine, ADMIN, cid, "approve", NOW, None, sms_provider="tencent",
                                  sms_templates=TEMPLATES)
    assert ("offer_id", "err_sms_offer") in [(p.field, p.key) for p in exc.value.problems]
    # Aliyun allows it: the SMS is the approved template as it is, the coupon goes to the member card
    spec = campaign_spec.from_docs(name="c", trigger="lapsed", channel="sms", category="member_benefit",
                                   store_id="s1", params={"offer_id": offer, "consents": ["sms_marketing"]},
                                   message={"text": "会员日全场积分双倍，回T退订", "sms_params": ["双倍"]},
                                   control_share=0.0)
    assert campaign_spec.problems(spec, sms_provider="aliyun", sms_templates=TEMPLATES) == []
    aid = campaign_admin.create(engine, ADMIN, spec, NOW, None)
    campaign_admin.transition(engine, ADMIN, aid, "approve", NOW, None, sms_provider="aliyun",
                              sms_templates=TEMPLATES)
    out = io.StringIO()
    d = deps(engine, sms=SmsChannel(PortalSms(ConsoleSms(out), "aliyun", TEMPLATES)))
    assert execution.deliver(d, aid, MEMBER_YES, 0, NOW).status == "sent"
    [c] = member_coupons(engine, MEMBER_YES)
    assert f"template 2000101 ['双倍'] (keliu-{aid}-0-{MEMBER_YES})" in out.getvalue()
    assert codes.display(c["code"]) not in out.getvalue() and c["code"] not in out.getvalue()
    with engine.connect() as conn:
        assert [x["code"] for x in coupons.member_coupons(conn, MEMBER_YES, NOW)] == [
            codes.display(c["code"])]


def test_the_report_counts_redemptions_of_the_campaigns_own_coupons(engine: Engine) -> None:
    offer = toffer(engine, per_member_issue_limit=5, per_member_use_limit=5)
    cid = new_campaign(engine, NOW, trigger="login_first", channel="splash", params={"offer_id": offer})
    assert execution.deliver(deps(engine), cid, MEMBER_YES, 0, NOW).status == "sent"
    mine = member_coupons(engine, MEMBER_YES)[0]["code"]
    elsewhere = tcoupon(engine, offer)  # the same offer from the counter: not the campaign's
    coupons.redeem(engine, tredeem(elsewhere, key="k-other"), NOW + timedelta(hours=1))
    with engine.connect() as conn:
        f = campaign_report.figures(conn, cid, 0)
    assert f is not None and (f.redeemed, f.discount_cents) == (0, 0)
    coupons.redeem(engine, tredeem(mine, key="k-mine"), NOW + timedelta(hours=2))
    with engine.connect() as conn:
        f = campaign_report.figures(conn, cid, 0)
    assert f is not None and (f.redeemed, f.discount_cents, f.attributed_redemptions) == (1, 1000, 1)
