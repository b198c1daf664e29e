"""The member card in WeChat's card holder, against the FAKE WeChat over real HTTP: the template created once
(``card/create``, ``MEMBER_CARD``), the member's card QR code with their member card number (never the phone), the
activation when WeChat pushes ``user_get_card`` (only for this account's card and a number keliu made), and the
member card number itself (pure)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from keliu.gate import MemoryGate
from keliu.testing.wechat_fake import FakeAccounts, FakeServer, openid_for, push_body
from portal.edges.sms_backends import ConsoleSms
from portal.store.members import upsert_member
from portal.wechat import card
from portal.wechat.card_api import CardApi
from portal.wechat.oauth import WechatApiError
from portal.wechat.sign import push_signature
from tests.portal.conftest import csrf_of, make_app

ACC = FakeAccounts()
PUBLIC = "http://portal.test"
MP_TOKEN = "mp-token-for-tests"
LOGO = "https://mmbiz.qpic.cn/fake/logo.png"
E164 = "+8613812345678"


def test_member_card_number_is_keyed_and_checked() -> None:
    key = b"k" * 32
    number = card.card_number(key, 42)
    assert len(number) == 16 and number.isdigit() and number.startswith("8000000042")
    assert card.member_of_number(key, number) == 42
    assert card.member_of_number(b"other-key" * 4, number) is None  # another installation's
    forged = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert card.member_of_number(key, forged) is None
    assert card.member_of_number(key, "8000000043" + number[10:]) is None  # another member with this tag
    for bad in ("", "13812345678", number + "0", "x" * 16, "８" * 16):
        assert card.member_of_number(key, bad) is None
    with pytest.raises(ValueError):
        card.card_number(key, 0)


def test_card_bodies_are_the_documented_ones() -> None:
    body = card.create_body(card.CardTemplate(brand_name="一二三四五六七八九十一二三", title="会员卡", logo_url=LOGO,
                                              center_url=PUBLIC + "/member", prerogative="p"))
    base = body["card"]["member_card"]["base_info"]
    assert body["card"]["card_type"] == "MEMBER_CARD" and len(base["brand_name"]) == 12
    # no code a screenshot could reuse: the centre button opens the member page and its changing QR code
    assert base["code_type"] == "CODE_TYPE_NONE" and base["use_custom_code"] is True
    assert base["center_url"] == PUBLIC + "/member"
    assert card.qrcode_body("pX", "8000000001123456")["action_info"]["card"] == {
        "card_id": "pX", "code": "8000000001123456", "is_unique_code": True, "outer_str": "member-page"}
    assert card.activate_body("pX", "8") == {"card_id": "pX", "code": "8", "membership_number": "8"}


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def wechat(fake_url: str, **kw: Any) -> dict[str, Any]:
    return {"enabled": True, "oauth_app_id": ACC.oauth_app_id, "oauth_secret": ACC.oauth_secret, "token": MP_TOKEN,
            "open_base": fake_url, "api_base": fake_url, "fake": True, **kw}


@pytest.fixture
def app(db_url: str, var_dir: Path, gate: MemoryGate, clock: Any, sms: ConsoleSms, neighbours: dict[str, str],
        fake: FakeServer) -> Flask:
    return make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"public_url": PUBLIC},
                    wechat=wechat(fake.url, member_card_logo_url=LOGO))


def as_member(app: Flask) -> tuple[Any, int]:
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        member_id = upsert_member(conn, store_id=svc.store_id, now=svc.now(), phone_e164=E164)
    c = app.test_client()
    with c.session_transaction() as s:
        s["member_id"] = member_id
        s["member_auth_at"] = datetime.fromtimestamp(svc.clock(), UTC).isoformat()
    return c, member_id


def push_card(app: Flask, card_id: str, code: str, openid: str, event: str = "user_get_card") -> Any:
    ts, nonce = str(int(app.extensions["keliu"].clock())), "777"
    sig = push_signature(MP_TOKEN, ts, nonce)
    body = push_body("gh_fake_account", openid, event, int(ts),
                     {"CardId": card_id, "UserCardCode": code, "IsGiveByFriend": "0", "OuterStr": "member-page"})
    r = app.test_client().post(f"/wechat/mp?signature={sig}&timestamp={ts}&nonce={nonce}", data=body,
                               content_type="text/xml")
    assert r.status_code == 200 and r.get_data(as_text=True) == "success"
    return r


def test_add_to_wechat_creates_the_template_once_and_activates_on_the_push(app: Flask, fake: FakeServer) -> None:
    svc = app.extensions["keliu"]
    c, member_id = as_member(app)
    page = c.get("/member").get_data(as_text=True)
    assert 'id="wechat-card"' in page
    r = c.post("/member/wechat-card", data={"csrf_token": csrf_of(page)})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="wechat-card-qr"' in html and "<svg" in html and "FAKE WeChat" in html
    [(card_id, created)] = fake.state.cards.items()
    base = created["card"]["member_card"]["base_info"]
    assert created["card"]["card_type"] == "MEMBER_CARD" and base["logo_url"] == LOGO
    assert base["center_url"] == PUBLIC + "/member" and base["brand_name"] == "Demo Mall"
    [(ticket, qr)] = fake.state.card_qrcodes.items()
    number = card.card_number(svc.keys.token, member_id)
    assert qr == {"card_id": card_id, "code": number, "is_unique_code": True, "outer_str": "member-page"}
    assert "13812345678" not in number and "13812345678" not in html  # the card number is not the phone
    url = fake.url + f"/fake/card/take?ticket={ticket}"
    assert f'href="{url}"' in html.replace("&amp;", "&")
    # a second time: the same template (one card/create), a new QR code
    assert c.post("/member/wechat-card", data={"csrf_token": csrf_of(page)}).status_code == 200
    assert len(fake.state.cards) == 1 and len(fake.state.card_qrcodes) == 2
    with svc.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT app_id, card_id FROM wechat_member_cards")).all() == [
            (ACC.oauth_app_id, card_id)]
    openid = openid_for(ACC.oauth_app_id, "bob")
    # a push before the member took the card: WeChat refuses the activation, nothing is activated
    push_card(app, card_id, number, openid)
    assert fake.state.activations == []
    assert requests.get(url + "&user=bob", timeout=5).status_code == 200  # the member takes the card in WeChat
    push_card(app, card_id, number, openid)
    assert fake.state.activations == [{"card_id": card_id, "code": number, "membership_number": number}]
    # a made-up number, another account's card, a member who is gone: keliu asks nothing of WeChat
    forged = number[:-1] + str((int(number[-1]) + 1) % 10)
    fake.state.cards_taken[(card_id, forged)] = openid
    push_card(app, card_id, forged, openid)
    fake.state.cards_taken[("pOTHER", number)] = openid
    push_card(app, "pOTHER", number, openid)
    gone = card.card_number(svc.keys.token, member_id + 1)
    fake.state.cards_taken[(card_id, gone)] = openid
    push_card(app, card_id, gone, openid)
    assert len(fake.state.activations) == 1
    # keliu remembers the one card it activated (what campaigns write on), and forgets it when the member removes it
    def activated() -> list[Any]:
        with svc.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT app_id, member_id, card_id, code FROM wechat_card_members"))]

    assert activated() == [(ACC.oauth_app_id, member_id, card_id, number)]
    push_card(app, "pOTHER", number, openid, event="user_del_card")  # not this account's card: nothing
    assert len(activated()) == 1
    push_card(app, card_id, number, openid, event="user_del_card")
    assert activated() == []


def test_a_wechat_failure_is_a_clear_answer(app: Flask, fake: FakeServer) -> None:
    c, _member = as_member(app)
    page = c.get("/member").get_data(as_text=True)
    requests.post(fake.url + "/fake/control", json={"fail": {"card_create": [45009, "api freq out of limit"]}},
                  timeout=5)
    r = c.post("/member/wechat-card", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and "wechat_card=failed" in r.headers["Location"]
    shown = c.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="member-error"' in shown and "微信" in shown
    assert fake.state.cards == {} and fake.state.card_qrcodes == {}
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM wechat_member_cards")).scalar() == 0
    # then it works: nothing half-made was kept
    assert c.post("/member/wechat-card", data={"csrf_token": csrf_of(page)}).status_code == 200


def test_the_fake_creates_only_member_cards_and_renews_a_stale_token(fake: FakeServer) -> None:
    t = [1000.0]
    api = CardApi(fake.url, ACC.oauth_app_id, ACC.oauth_secret, lambda: t[0])
    with pytest.raises(WechatApiError) as err:
        api.create_card({"card": {"card_type": "GROUPON", "groupon": {}}})
    assert err.value.errcode == 40078
    fake.state.api_tokens.clear()  # WeChat ended the token: fetched again once, the call goes through
    card_id = api.create_card(card.create_body(card.CardTemplate(
        brand_name="B", title="会员卡", logo_url=LOGO, center_url=PUBLIC + "/member", prerogative="p")))
    assert card_id in fake.state.cards and len(fake.state.api_tokens) == 1
    assert "secret" not in repr(api) and ACC.oauth_secret not in repr(api)
    bad = CardApi(fake.url, ACC.oauth_app_id, "wrong", lambda: t[0])
    with pytest.raises(WechatApiError) as err:
        bad.activate(card.activate_body(card_id, "1"))
    assert err.value.errcode == 40125 and "wrong" not in str(err.value)


def test_no_button_without_the_card_configured(db_url: str, var_dir: Path, gate: MemoryGate, clock: Any,
                                               sms: ConsoleSms, neighbours: dict[str, str], fake: FakeServer) -> None:
    plain = make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"public_url": PUBLIC},
                     wechat=wechat(fake.url))
    c, _member = as_member(plain)
    page = c.get("/member").get_data(as_text=True)
    assert 'id="member-qr"' in page and 'id="wechat-card"' not in page
    assert c.post("/member/wechat-card", data={"csrf_token": csrf_of(page)}).status_code == 404
