"""The member page ``/member``: SMS login from any network, the card's QR, consents, a shop assistant's card."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu.accounts import users
from keliu.gate import MemoryGate
from marketing import staff
from portal.edges.sms_backends import ConsoleSms
from portal.store import members as pm
from portal.store.members import upsert_member
from portal.web import member as member_web
from tests.portal.conftest import FakeClock, Phone, csrf_of, make_app

MOBILE_IP = "198.51.100.7"  # mobile data: no neighbour entry, not the store's LAN
NUMBER, E164 = "13812345678", "+8613812345678"


def tmember(app: Flask, e164: str = E164) -> int:
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        return upsert_member(conn, store_id=svc.store_id, now=svc.now(), phone_e164=e164)


def member_login(p: Phone, sms: ConsoleSms, number: str = NUMBER, code: str | None = None) -> Any:
    token = csrf_of(p.get("/member").get_data(as_text=True))
    r = p.post("/member/code", data={"csrf_token": token, "phone": number})
    assert r.status_code == 200 and 'id="member-sent"' in r.get_data(as_text=True), r.get_data(as_text=True)
    from portal.core.phone import normalize

    sent = sms.last[normalize(number)]
    return p.post("/member/login", data={"csrf_token": token, "phone": number, "code": code or sent})


def test_sms_login_from_mobile_data_shows_the_card(app: Flask, sms: ConsoleSms, gate: MemoryGate) -> None:
    member_id = tmember(app)
    p = Phone(app, MOBILE_IP)
    page = p.get("/member")
    assert page.status_code == 200 and 'id="member-login"' in page.get_data(as_text=True)
    r = member_login(p, sms)
    assert r.status_code == 303 and r.headers["Location"] == "/member"
    card = p.get("/member")
    html = card.get_data(as_text=True)
    assert 'id="member-qr"' in html and NUMBER not in html and "5678" in html
    assert card.headers["Cache-Control"] == "no-store"
    with p.http.session_transaction() as s:
        assert s["member_id"] == member_id and datetime.fromisoformat(s["member_auth_at"]).tzinfo is not None
    assert gate.log == []  # the member page logs nobody onto the Wi-Fi
    qr = p.get("/member/qr.svg")
    assert qr.status_code == 200 and qr.headers["Content-Type"] == "image/svg+xml"
    assert qr.headers["Cache-Control"] == "no-store" and b"<svg" in qr.data
    assert p.get("/member/qr.svg").data != qr.data  # a new code (a new nonce) every time


def test_current_member_id_convention(app: Flask, sms: ConsoleSms, clock: FakeClock) -> None:
    member_id = tmember(app)
    p = Phone(app, MOBILE_IP)
    member_login(p, sms)
    with app.test_request_context("/"):
        from flask import session

        assert member_web.current_member_id() is None
        session["member_id"] = member_id
        session["member_auth_at"] = datetime.fromtimestamp(clock.t, UTC).isoformat()
        assert member_web.current_member_id() == member_id
        session["member_auth_at"] = "yesterday"
        assert member_web.current_member_id() is None
        session["member_auth_at"] = datetime.fromtimestamp(clock.t, UTC).replace(tzinfo=None).isoformat()
        assert member_web.current_member_id() is None
        session["member_auth_at"] = datetime.fromtimestamp(clock.t, UTC).isoformat()
        session["member_id"] = "1"
        assert member_web.current_member_id() is None
    clock.advance(9 * 3600)  # older than the session's life (8 h): logged out, the QR refused
    assert 'id="member-login"' in p.get("/member").get_data(as_text=True)
    assert p.get("/member/qr.svg").status_code == 302


def test_unknown_number_is_told_only_after_the_code(app: Flask, sms: ConsoleSms) -> None:
    p = Phone(app, MOBILE_IP)
    r = member_login(p, sms, "13900001111")
    assert r.status_code == 404 and "还不是会员" in r.get_data(as_text=True)
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM members")).scalar() == 0
    with p.http.session_transaction() as s:
        assert "member_id" not in s


def test_wrong_code_and_rate_limits(db_url: str, var_dir: Path, clock: FakeClock, sms: ConsoleSms,
                                    neighbours: dict[str, str]) -> None:
    app = make_app(db_url, var_dir, MemoryGate(clock), clock, sms, neighbours,
                   sms={"per_ip_per_hour": 2, "resend_s": 1})
    tmember(app)
    p = Phone(app, MOBILE_IP)
    sent = member_login(p, sms)
    assert sent.status_code == 303
    p2 = Phone(app, MOBILE_IP)  # another browser on the same address
    token = csrf_of(p2.get("/member").get_data(as_text=True))
    r = p2.post("/member/code", data={"csrf_token": token, "phone": NUMBER})
    assert r.status_code == 200
    r = p2.post("/member/code", data={"csrf_token": token, "phone": "13900002222"})
    assert r.status_code == 429 and 'id="member-error"' in r.get_data(as_text=True)
    wrong = "111111" if sms.last[E164] != "111111" else "222222"
    r = p2.post("/member/login", data={"csrf_token": token, "phone": NUMBER, "code": wrong})
    assert r.status_code == 400
    with p2.http.session_transaction() as s:
        assert "member_id" not in s


def test_consents_are_changed_and_appended(app: Flask, sms: ConsoleSms) -> None:
    member_id = tmember(app)
    p = Phone(app, MOBILE_IP)
    member_login(p, sms)
    token = csrf_of(p.get("/member").get_data(as_text=True))
    r = p.post("/member/consents", data={"csrf_token": token, "marketing": "1"})
    assert r.status_code == 200 and 'id="c-marketing" name="marketing" value="1" checked' in r.get_data(as_text=True)
    p.post("/member/consents", data={"csrf_token": token, "marketing": "1"})  # unchanged: no new row
    p.post("/member/consents", data={"csrf_token": token, "analytics": "1"})
    with app.extensions["keliu"].engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, granted FROM consents WHERE member_id = :m ORDER BY id"),
                            {"m": member_id}).all()
    assert [(k, bool(g)) for k, g in rows] == [("marketing", True), ("marketing", False), ("analytics", True)]
    # without a login, nothing changes
    stranger = Phone(app, MOBILE_IP)
    t2 = csrf_of(stranger.get("/member").get_data(as_text=True))
    assert stranger.post("/member/consents", data={"csrf_token": t2, "marketing": "1"}).status_code == 302


def test_presence_and_trade_area_consents_are_separate_and_recorded(app: Flask, sms: ConsoleSms) -> None:
    """The two separate consents of marketing (presence-triggered offers: movement tracks, PIPL art. 28; offers of
    the mall's other stores): granted and withdrawn on the member page, each on its own, recorded like the others
    (versioned, with time, store and language), and read by marketing's contact policy."""
    from portal.store.marketing_members import PortalMembers

    member_id = tmember(app)
    svc = app.extensions["keliu"]
    p = Phone(app, MOBILE_IP)
    member_login(p, sms)
    html = p.get("/member?lang=en").get_data(as_text=True)
    assert "Offers when I am in the store" in html and "Offers from the mall&#39;s other stores" in html
    assert 'id="c-presence_offers" name="presence_offers" value="1">' in html  # not granted: unticked
    zh = p.get("/member?lang=zh-CN").get_data(as_text=True)
    assert "到店时接收优惠" in zh and "接收本商场其他门店的优惠" in zh
    token = csrf_of(zh)
    r = p.post("/member/consents", data={"csrf_token": token, "marketing": "1", "presence_offers": "1"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="c-presence_offers" name="presence_offers" value="1" checked' in page
    assert 'id="c-trade_area" name="trade_area" value="1">' in page
    with svc.engine.connect() as conn:
        assert PortalMembers().consents_of(conn, member_id) == (
            frozenset({"marketing", "sms_marketing", "wechat_marketing", "presence_offers"}), frozenset())
    # the trade area on its own; then the presence consent withdrawn while the others stay
    p.post("/member/consents", data={"csrf_token": token, "marketing": "1", "presence_offers": "1",
                                     "trade_area": "1"})
    p.post("/member/consents", data={"csrf_token": token, "marketing": "1", "trade_area": "1"})
    with svc.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, granted, version, store_id, lang, ts, source FROM consents "
                                    "WHERE member_id = :m ORDER BY id"), {"m": member_id}).all()
        granted, _ = PortalMembers().consents_of(conn, member_id)
    assert [(r.kind, bool(r.granted), r.version) for r in rows] == [
        ("marketing", True, "marketing-2026-11"), ("presence_offers", True, "presence-2026-12"),
        ("trade_area", True, "trade-area-2026-12"), ("presence_offers", False, "presence-2026-12")]
    assert {(r.store_id, r.lang, r.source) for r in rows} == {(svc.store_id, "zh-CN", None)}
    assert all(r.ts is not None for r in rows)
    assert granted == frozenset({"marketing", "sms_marketing", "wechat_marketing", "trade_area"})
    # withdrawing marketing leaves no marketing purpose, whatever the separate consents say
    p.post("/member/consents", data={"csrf_token": token, "trade_area": "1"})
    with svc.engine.connect() as conn:
        assert PortalMembers().consents_of(conn, member_id)[0] == frozenset()
    # the member's data page lists them with a withdrawal each
    data = p.get("/member/data?lang=en").get_data(as_text=True)
    assert "Offers triggered by my presence (movement tracks)" in data and "Offers from the mall" in data


def test_staff_card_binds_after_login_and_confirmation(app: Flask, sms: ConsoleSms) -> None:
    member_id = tmember(app)
    svc = app.extensions["keliu"]
    users.create_user(svc.engine, "alice", "pw-alice", "staff", store_id=svc.store_id)
    with svc.engine.begin() as conn:
        code = staff.ensure_card(conn, "alice", svc.store_id, svc.now()).code
    p = Phone(app, MOBILE_IP)
    assert p.get(f"/member/staff/{code}").status_code == 303  # remembered across the login
    member_login(p, sms)
    html = p.get("/member").get_data(as_text=True)
    assert 'id="staff-confirm"' in html and "alice" in html
    with svc.engine.connect() as conn:
        assert staff.history(conn, member_id, svc.store_id) == []  # opening the URL alone binds nobody
    r = p.post("/member/staff", data={"csrf_token": csrf_of(html), "bind": "1"})
    assert r.status_code == 200 and 'id="member-notice"' in r.get_data(as_text=True)
    with svc.engine.connect() as conn:
        assert [b.staff for b in staff.history(conn, member_id, svc.store_id)] == ["alice"]
    p.get("/member/staff/not-a-card")
    r = p.post("/member/staff", data={"csrf_token": csrf_of(html), "bind": "1"})
    assert r.status_code == 404


@pytest.mark.parametrize("path", ["/member/qr.svg"])
def test_pages_need_a_member(client: Any, path: str) -> None:
    assert client.get(path).status_code == 302


def test_card_lists_coupons_and_purchases(app: Flask, sms: ConsoleSms) -> None:
    from marketing.core.offers import OfferSpec
    from marketing.store import coupons
    from marketing.store.models import sales

    member_id = tmember(app)
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        offer = coupons.create_offer(conn, OfferSpec(title="满100减20", kind="amount_off", value=2000,
                                                     stores=(svc.store_id,), min_spend_cents=10000, valid_days=7),
                                     store_id=svc.store_id, now=svc.now(), created_by="test")
        code = coupons.issue_coupon(conn, offer_id=offer, member_id=member_id, store_id=svc.store_id,
                                    channel="staff", now=svc.now()).display_code
        conn.execute(sa.insert(sales).values(store_id=svc.store_id, txn_id="T1", kind="sale", ts=svc.now(),
                                             amount_cents=12345, member_id=member_id, match="phone", row_hash="h"))
    p = Phone(app, MOBILE_IP)
    member_login(p, sms)
    html = p.get("/member").get_data(as_text=True)
    assert f'data-code="{code}" data-state="issued"' in html and "满100减20" in html
    assert "¥123.45" in html


def test_member_login_and_logout_leave_an_admin_session_alone(app: Flask, sms: ConsoleSms) -> None:
    from tests.portal.conftest import AuthActions

    tmember(app)
    p = Phone(app, MOBILE_IP)
    admin = AuthActions(p.http)
    assert admin.login().status_code in (302, 303)
    assert p.get("/admin").status_code == 200
    with p.http.session_transaction() as s:
        planted = dict(s)  # what a session fixed before the login would hold
    r = member_login(p, sms)
    assert r.status_code == 303
    with p.http.session_transaction() as s:
        assert s["admin_sid"] == planted["admin_sid"] and isinstance(s["member_id"], int)
        # the member's keys and the CSRF token are new: the session from before the login is not the one logged in
        assert s.get("csrf_token") != planted.get("csrf_token") and "member_browser" not in s
        assert s.permanent
    assert p.get("/admin").status_code == 200  # both logins hold
    assert 'id="member-qr"' in p.get("/member").get_data(as_text=True)
    token = csrf_of(p.get("/member").get_data(as_text=True))
    assert p.post("/member/logout", data={"csrf_token": token}).status_code == 303
    assert 'id="member-login"' in p.get("/member").get_data(as_text=True)
    assert p.get("/admin").status_code == 200  # the admin is still in after the member left
    with p.http.session_transaction() as s:
        assert "member_id" not in s and "member_auth_at" not in s and s.permanent
    assert admin.logout().status_code in (302, 303)
    assert p.get("/admin").status_code == 302


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_db_app(request: pytest.FixtureRequest, sqlite_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock,
               sms: ConsoleSms, neighbours: dict[str, str]) -> Flask:
    db_url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("migrated_postgres_url"))
    return make_app(db_url, var_dir, gate, clock, sms, neighbours)


def test_analytics_withdrawal_reaches_the_sensor_registry_at_once(any_db_app: Flask, sms: ConsoleSms) -> None:
    from portal.store import rights
    from sensor import consent
    from sensor.store import sightings

    app = any_db_app
    svc = app.extensions["keliu"]
    # the member consented to analytics on two phones on the Wi-Fi: two stable ids in the sensor's registry
    Phone(app, "10.77.0.20").login(sms, marketing=True, analytics=True)
    Phone(app, "10.77.0.21").login(sms, analytics=True)
    with svc.engine.connect() as conn:
        member_id = rights.find(conn, E164)
        assert member_id is not None
        rids = rights.registry_ids(conn, member_id)
    assert len(rids) == 2 and all(consent.kind_of(svc.engine, r) == "member" for r in rids)
    other = "0123456789abcdef"
    consent.register(svc.engine, other, "member")  # another shopper's phone: untouched
    with svc.engine.begin() as conn:
        conn.execute(sa.insert(sightings), [{"sid": f"s{i}", "ts": 1.0e9, "store": svc.store_id, "sensor": "x",
                                              "device": dev, "randomized": False}
                                             for i, dev in enumerate((*rids, other))])
    p = Phone(app, MOBILE_IP)  # the member page, from mobile data: no MAC known here
    member_login(p, sms)
    token = csrf_of(p.get("/member").get_data(as_text=True))
    r = p.post("/member/consents", data={"csrf_token": token, "marketing": "1"})  # analytics unticked
    assert r.status_code == 200 and 'id="c-analytics" name="analytics" value="1" checked' not in r.get_data(
        as_text=True)
    assert [consent.kind_of(svc.engine, r) for r in rids] == [None, None]  # now, not at the next Wi-Fi login
    assert consent.kind_of(svc.engine, other) == "member"
    with svc.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT device FROM sightings")).scalars().all() == [other]
        now = pm.current_consents(conn, member_id)
    assert (now["analytics"], now["marketing"]) == (False, True)
    # an opt-out stays an opt-out: withdrawing the member's consent never registers a device again
    consent.register(svc.engine, rids[0], "optout")
    p.post("/member/consents", data={"csrf_token": token, "marketing": "1", "analytics": "1"})
    p.post("/member/consents", data={"csrf_token": token, "marketing": "1"})
    assert consent.kind_of(svc.engine, rids[0]) == "optout"
