"""The WeChat member card as a campaign channel, against the FAKE WeChat over real HTTP and real databases: the card
was made and activated the way the member page does it (card/create, the card QR code taken, the activation
recorded); a campaign then writes its message on the card (card/membercard/updateuser, with WeChat's
notification) through the execution's claim → lease → send → mark and the contact policy; a member without an
activated card is suppressed ``no_card``, one without WeChat marketing consent ``no_consent``; and the appliance's
Celery app (keliu.tasks) wires the channel and the cards when the official account is configured."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu.testing.wechat_fake import FakeAccounts, FakeServer
from marketing import execution
from marketing.channels import Outgoing
from marketing.channels.wechat import WechatChannel
from marketing.channels.wechat_card import WechatCardChannel, update_body
from marketing.core.campaign_spec import Content
from portal.store.marketing_members import PortalMembers
from portal.wechat import card
from portal.wechat.card_api import CardApi
from portal.wechat.marketing_cards import PortalCards
from portal.wechat.member_card import record_activation
from tests.marketing.conftest import MEMBER_NO, MEMBER_YES, NOW
from tests.marketing.test_campaign_execution import send_row, tcampaign

pytestmark = pytest.mark.integration
ACC = FakeAccounts()
TEXT = "满100减20券已到账"
MEMBER_NOCARD = 3


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer(accounts=ACC) as server:
        yield server


def activate_card(engine: Engine, fake: FakeServer, member_id: int) -> tuple[str, str]:
    """What the member page and the official account's push do (portal.wechat.member_card), step by step."""
    api = CardApi(fake.url, ACC.oauth_app_id, ACC.oauth_secret, time.time)
    card_id = next(iter(fake.state.cards), None) or api.create_card(card.create_body(card.CardTemplate(
        brand_name="Mall", title="会员卡", logo_url="https://mmbiz.qpic.cn/x.png", center_url="http://p/member",
        prerogative="p")))
    number = card.card_number(b"k" * 32, member_id)
    url = api.card_qrcode(card.qrcode_body(card_id, number))
    assert requests.get(url + f"&user=u{member_id}", timeout=5).status_code == 200  # the member takes it
    api.activate(card.activate_body(card_id, number))
    record_activation(engine, ACC.oauth_app_id, member_id, card_id, number, NOW)
    return card_id, number


def card_deps(engine: Engine, fake: FakeServer) -> execution.Deps:
    account = WechatChannel(fake.url, ACC.oauth_app_id, ACC.oauth_secret, timeout_s=5)
    return execution.Deps(engine=engine, contacts=PortalMembers(), lease=timedelta(seconds=60),
                          channels={"wechat": account, "wechat_card": WechatCardChannel(account)},
                          cards=PortalCards(ACC.oauth_app_id))


def ccampaign(engine: Engine) -> int:
    return tcampaign(engine, trigger="lapsed", channel="wechat_card", message={"text": TEXT})


def test_the_message_is_written_on_the_members_card(engine: Engine, fake: FakeServer) -> None:
    d = card_deps(engine, fake)
    first = ccampaign(engine)
    r = execution.deliver(d, first, MEMBER_YES, 0, NOW)  # no card yet: suppressed, nothing asked of WeChat
    assert (r.status, r.reason) == ("suppressed", "no_card")
    r = execution.deliver(d, first, MEMBER_NO, 0, NOW)  # consent is decided first, card or not
    assert (r.status, r.reason) == ("suppressed", "no_consent:wechat_marketing")
    assert fake.state.card_updates == []

    card_id, number = activate_card(engine, fake, MEMBER_YES)
    cid = ccampaign(engine)
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW).status == "sent"
    assert fake.state.card_updates == [update_body(card_id, number, TEXT)] == [
        {"card_id": card_id, "code": number, "custom_field_value1": TEXT,
         "notify_optional": {"is_notify_custom_field1": True}}]
    assert fake.state.card_fields[(card_id, number)]["custom_field_value1"] == TEXT
    row = send_row(engine, cid, MEMBER_YES)
    assert (row["status"], row["provider_ref"]) == ("sent", f"card:{number}")
    assert "13812345678" not in number  # the card's code is the member card number, never the phone
    # the same send again is the one already sent: WeChat is not asked again
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW) == execution.Result("duplicate", "sent")
    assert len(fake.state.card_updates) == 1
    # a send taken over after its worker died calls again with the same body: the card ends the same
    again = Outgoing(cid, 0, MEMBER_YES, "member_benefit", Content(text=TEXT), f"keliu-{cid}-0-{MEMBER_YES}",
                     address=number, extra={"card_id": card_id})
    assert d.channels["wechat_card"].send(again, NOW.timestamp()) == f"card:{number}"
    assert fake.state.card_fields[(card_id, number)] == {"custom_field_value1": TEXT}


def test_the_contact_policy_holds_for_the_card(engine: Engine, fake: FakeServer) -> None:
    d = card_deps(engine, fake)
    activate_card(engine, fake, MEMBER_YES)
    evening = ccampaign(engine)
    r = execution.deliver(d, evening, MEMBER_YES, 0, NOW + timedelta(hours=3))  # 21:00 in Shanghai
    assert (r.status, r.reason) == ("suppressed", "quiet_hours")
    # the member card at WeChat is gone (the member removed it): permanent, recorded with WeChat's code
    fake.state.activations.clear()
    removed = ccampaign(engine)
    assert execution.deliver(d, removed, MEMBER_YES, 0, NOW) == execution.Result("failed", "errcode 40056")
    assert send_row(engine, removed, MEMBER_YES)["error"] == "wechat_card: errcode 40056"
    # a refusal of WeChat marketing covers the member card
    with engine.begin() as conn:
        PortalMembers().withdraw(conn, MEMBER_YES, "wechat_marketing", NOW, "member_page")
    refused = ccampaign(engine)
    r = execution.deliver(d, refused, MEMBER_YES, 0, NOW + timedelta(seconds=1))
    assert (r.status, r.reason) == ("suppressed", "withdrawn")
    assert fake.state.card_updates == []
    assert execution.counts(engine, evening)["suppressed"] == {"quiet_hours": 1}


def test_the_appliances_celery_app_sends_through_the_card(engine: Engine, fake: FakeServer) -> None:
    """keliu.tasks.make_app with the official account configured: ``marketing.run_campaign`` (eager) enrolls the
    lapsed members and ``marketing.deliver_wechat_card`` updates the card of the one who has it."""
    from keliu import config
    from keliu.tasks import make_app

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO members (id, phone_e164, created_at, first_store_id, last_seen_at) "
                             "VALUES (:i, '+8613700000003', :t, 's1', :t)"), {"i": MEMBER_NOCARD, "t": NOW})
        conn.execute(sa.text("INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang) "
                             "VALUES (:i, 'marketing', 'v1', true, :t, 's1', 'zh-CN')"), {"i": MEMBER_NOCARD, "t": NOW})
    card_id, number = activate_card(engine, fake, MEMBER_YES)
    cid = ccampaign(engine)
    app = make_app(config.load(overrides={
        "database_url": engine.url.render_as_string(hide_password=False),
        "wechat": {"oauth_app_id": ACC.oauth_app_id, "oauth_secret": ACC.oauth_secret, "api_base": fake.url}},
        env={}))
    later = (NOW + timedelta(days=31)).timestamp()
    assert app.tasks["marketing.run_campaign"].delay(cid, later).get() == 3
    got = execution.counts(engine, cid)
    assert got["status"] == {"sent": 1, "suppressed": 2}
    assert got["suppressed"] == {"no_card": 1, "no_consent:wechat_marketing": 1}
    assert [(u["card_id"], u["code"]) for u in fake.state.card_updates] == [(card_id, number)]


def test_the_activated_card_is_in_the_members_export_and_goes_with_them(engine: Engine, fake: FakeServer) -> None:
    from portal.wechat import rights

    card_id, number = activate_card(engine, fake, MEMBER_YES)
    with engine.begin() as conn:
        exported = rights.export_member(conn, MEMBER_YES)["member_cards"]
        assert [(c["app_id"], c["card_id"], c["code"]) for c in exported] == [(ACC.oauth_app_id, card_id, number)]
        rights.erase_member(conn, MEMBER_YES)
        assert PortalCards(ACC.oauth_app_id).card_of(conn, MEMBER_YES) is None
