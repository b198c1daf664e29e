"""The POS/integration API through the portal app (Flask test client, real SQLite and PostgreSQL): bearer tokens
and tenancy, every status code of the offers, coupons, redemptions and transactions endpoints, the OpenAPI
document, and the welcome coupon on the Wi-Fi success page."""
from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from keliu.accounts import tokens
from keliu.gate import MemoryGate
from marketing.store.models import coupons, redemptions, sales
from portal.edges.sms_backends import ConsoleSms
from tests.conftest import fresh_postgres
from tests.portal.conftest import FakeClock, Phone, csrf_of, make_app

pytestmark = pytest.mark.integration

TENANTS = {
    "malls": [{"id": "m1", "name": "Mall 1"}, {"id": "m2", "name": "Mall 2"}],
    "stores": [{"id": "s1", "mall": "m1", "name": "A", "timezone": "Asia/Shanghai"},
               {"id": "s2", "mall": "m1", "name": "B", "timezone": "Asia/Shanghai"},
               {"id": "x1", "mall": "m2", "name": "X", "timezone": "Asia/Shanghai"}],
    "portal": {"store": "s1"},
}
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    for name in [n for n in os.environ if n.startswith("KELIU_")]:
        monkeypatch.delenv(name)
    var = tmp_path / "var"
    var.mkdir()
    monkeypatch.chdir(tmp_path)
    clock = FakeClock(NOW.timestamp())
    sms = ConsoleSms(io.StringIO())

    def build(url: str) -> Flask:
        a = make_app(url, var, MemoryGate(clock), clock, sms, {"10.77.0.20": "3c:22:fb:00:00:01"}, **TENANTS)
        a.config["TEST_SMS"] = sms
        return a

    if request.param == "sqlite":
        a = build(str(request.getfixturevalue("migrated_sqlite_url")))
        yield a
        a.extensions["keliu"].engine.dispose()
        return
    with fresh_postgres(migrated=True) as url:
        a = build(url)
        yield a
        a.extensions["keliu"].engine.dispose()


def token(app: Flask, **kw: Any) -> dict[str, str]:
    _name, t = tokens.create_token(app.extensions["keliu"].engine, now=NOW, **kw)
    return {"Authorization": f"Bearer {t}"}


def member(app: Flask, phone: str, marketing: bool) -> int:
    with app.extensions["keliu"].engine.begin() as conn:
        mid = conn.execute(sa.text("INSERT INTO members (phone_e164, created_at, first_store_id, last_seen_at) "
                                   "VALUES (:p, :t, 's1', :t) RETURNING id"), {"p": phone, "t": NOW}).scalar_one()
        conn.execute(sa.text("INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang) "
                             "VALUES (:i, 'marketing', 'v1', :g, :t, 's1', 'zh-CN')"),
                     {"i": mid, "g": marketing, "t": NOW})
    return int(mid)


OFFER = {"title": "满50减10", "kind": "amount_off", "value": 1000, "min_spend_cents": 5000, "valid_days": 7,
         "stores": ["s1", "s2"]}


def offer(client: FlaskClient, auth: dict[str, str], **kw: Any) -> int:
    r = client.post("/api/v1/stores/s1/offers", json={**OFFER, **kw}, headers=auth)
    assert r.status_code == 201, r.get_json()
    return int(r.get_json()["id"])


def test_tokens_and_tenancy(app: Flask) -> None:
    c = app.test_client()
    s1 = token(app, role="store", store_id="s1")
    mall = token(app, role="mall", mall_id="m1")
    other = token(app, role="mall", mall_id="m2")
    assert c.post("/api/v1/stores/s1/offers", json=OFFER).status_code == 401
    # another site's form post carries no token (bearer tokens are no ambient credential): 401, nothing stored
    r = c.post("/api/v1/stores/s1/redemptions", data={"code": "x"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 401
    r = c.post("/api/v1/stores/s1/offers", json=OFFER, headers={"Authorization": "Bearer kl_nope"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert c.post("/api/v1/stores/s1/offers", json=OFFER, headers=s1).status_code == 201
    assert c.post("/api/v1/stores/s2/offers", json=OFFER, headers=s1).status_code == 403
    assert c.post("/api/v1/stores/s2/offers", json=OFFER, headers=mall).status_code == 201
    assert c.post("/api/v1/stores/s1/offers", json=OFFER, headers=other).status_code == 403
    assert c.post("/api/v1/stores/nope/offers", json=OFFER, headers=mall).status_code == 403
    engine = app.extensions["keliu"].engine
    name = tokens.list_tokens(engine)[0].name
    tokens.revoke_token(engine, name, NOW)
    assert c.post("/api/v1/stores/s1/offers", json=OFFER, headers=s1).status_code == 401
    with engine.connect() as conn:   # only hashes are stored
        stored = set(conn.execute(sa.select(tokens.api_tokens.c.token_hash)).scalars())
    assert s1["Authorization"].split()[1] not in stored


def test_offers_refuse_bad_bodies(app: Flask) -> None:
    c = app.test_client()
    auth = token(app, role="store", store_id="s1")
    r = c.post("/api/v1/stores/s1/offers", json={**OFFER, "kind": "bogo"}, headers=auth)
    assert r.status_code == 422 and "kind" in r.get_json()["message"]
    assert c.post("/api/v1/stores/s1/offers", data="[", headers={**auth, "Content-Type": "application/json"}
                  ).status_code == 422
    assert c.post("/api/v1/stores/s1/offers", json={**OFFER, "stores": ["x1"]}, headers=auth).status_code == 422


def test_issue_needs_a_consenting_member(app: Flask) -> None:
    c = app.test_client()
    auth = token(app, role="store", store_id="s1")
    oid = offer(c, auth)
    member(app, "+8613812345678", True)
    member(app, "+8613912345678", False)
    r = c.post("/api/v1/stores/s1/coupons", json={"offer_id": oid, "phone": "138 1234 5678"}, headers=auth)
    assert r.status_code == 201 and len(r.get_json()["code"]) == 19
    r = c.post("/api/v1/stores/s1/coupons", json={"offer_id": oid, "phone": "13912345678"}, headers=auth)
    assert (r.status_code, r.get_json()["error"]) == (409, "no_consent")
    r = c.post("/api/v1/stores/s1/coupons", json={"offer_id": oid, "phone": "13700000000"}, headers=auth)
    assert (r.status_code, r.get_json()["error"]) == (409, "not_a_member")
    r = c.post("/api/v1/stores/s1/coupons", json={"offer_id": oid, "phone": "13812345678"}, headers=auth)
    assert (r.status_code, r.get_json()["error"]) == (409, "member_limit")
    r = c.post("/api/v1/stores/s1/coupons", json={"offer_id": 999, "phone": "13812345678"}, headers=auth)
    assert r.status_code == 404
    r = c.post("/api/v1/stores/s1/coupons", json={"offer_id": "1", "phone": "13812345678"}, headers=auth)
    assert r.status_code == 422


def test_redemption_status_codes(app: Flask) -> None:
    c = app.test_client()
    s1 = token(app, role="store", store_id="s1")
    s2 = token(app, role="store", store_id="s2")
    x1 = token(app, role="store", store_id="x1")
    oid = offer(c, s1)
    member(app, "+8613812345678", True)
    code = c.post("/api/v1/stores/s1/coupons", json={"offer_id": oid, "phone": "13812345678"},
                  headers=s1).get_json()["code"]
    body = {"code": code, "idempotency_key": "pos-1-0001", "amount_cents": 8800, "pos_txn_id": "T-1"}
    url = "/api/v1/stores/s2/redemptions"
    # a code from another mall's store: 403; the coupon detail likewise
    assert c.post("/api/v1/stores/x1/redemptions", json=body, headers=x1).status_code == 403
    assert c.get(f"/api/v1/stores/s2/coupons/{code}", headers=s2).get_json()["redeemable"] is True
    first = c.post(url, json=body, headers=s2)
    assert first.status_code == 201 and first.get_json()["discount_cents"] == 1000
    replay = c.post(url, json=body, headers=s2)
    assert replay.status_code == 200 and replay.get_json() == first.get_json()
    assert c.post(url, json={**body, "amount_cents": 8801}, headers=s2).status_code == 422
    r = c.post(url, json={**body, "idempotency_key": "pos-1-0002"}, headers=s2)
    assert (r.status_code, r.get_json()["error"]) == (409, "already_redeemed")
    r = c.post(url, json={**body, "code": "0000-0000-0000-0000", "idempotency_key": "k3"}, headers=s2)
    assert r.status_code == 404
    assert c.post(url, json={"code": code}, headers=s2).status_code == 422
    assert c.post(url, json={**body, "amount_cents": -1, "idempotency_key": "k4"}, headers=s2).status_code == 422
    assert c.post(url, json={**body, "extra": 1, "idempotency_key": "k5"}, headers=s2).status_code == 422
    assert c.post(url, json=body).status_code == 401
    assert c.post(url, json=body, headers=s1).status_code == 403
    # rollback, then the coupon redeems again
    rb = {"idempotency_key": "rb-1", "original_idempotency_key": "pos-1-0001"}
    r = c.post(url + "/rollback", json=rb, headers=s2)
    assert r.status_code == 201 and r.get_json()["kind"] == "rollback"
    assert c.post(url + "/rollback", json=rb, headers=s2).status_code == 200
    r = c.post(url + "/rollback", json={**rb, "idempotency_key": "rb-2"}, headers=s2)
    assert r.status_code == 409
    assert c.post(url + "/rollback", json={**rb, "original_idempotency_key": "zz", "idempotency_key": "rb-3"},
                  headers=s2).status_code == 404
    assert c.post(url, json={**body, "idempotency_key": "pos-1-0003"}, headers=s2).status_code == 201
    with app.extensions["keliu"].engine.connect() as conn:
        kinds = conn.execute(sa.select(redemptions.c.kind, redemptions.c.staff).order_by(redemptions.c.id)).all()
        assert [k for k, _ in kinds] == ["redeem", "rollback", "redeem"]
        assert {s for _, s in kinds} == {f"token:{tokens.list_tokens(app.extensions['keliu'].engine)[1].name}"}
        assert conn.execute(sa.select(coupons.c.state)).scalar() == "redeemed"


def test_transactions(app: Flask) -> None:
    c = app.test_client()
    auth = token(app, role="store", store_id="s1")
    mid = member(app, "+8613812345678", True)
    url = "/api/v1/stores/s1/transactions"
    sale = {"txn_id": "T1", "ts": "2026-12-06T18:00:00+08:00", "amount_cents": 12800, "phone": "13812345678"}
    r = c.post(url, json=sale, headers=auth)
    assert r.status_code == 201 and r.get_json()["match"] == "phone"
    assert c.post(url, json=sale, headers=auth).status_code == 200
    assert c.post(url, json={**sale, "amount_cents": 1}, headers=auth).status_code == 422
    refund = {"txn_id": "R1", "ts": "2026-12-06 19:00:00", "amount_cents": 2800, "kind": "refund", "refund_of": "T1"}
    assert c.post(url, json=refund, headers=auth).status_code == 201
    r = c.post(url, json={**refund, "txn_id": "R2", "refund_of": "NOPE"}, headers=auth)
    assert (r.status_code, r.get_json()["error"]) == (409, "unknown_sale")
    assert c.post(url, json={"txn_id": "T9", "ts": "soon", "amount_cents": 1}, headers=auth).status_code == 422
    # no phone number lands in the sales table
    with app.extensions["keliu"].engine.connect() as conn:
        rows = conn.execute(sa.select(sales)).all()
    assert [r.member_id for r in rows] == [mid, None]
    assert "13812345678" not in repr(rows)


def test_every_api_route_is_in_the_served_document(app: Flask) -> None:
    doc = app.test_client().get("/api/openapi.json").get_json()
    routes = {str(r.rule).replace("<", "{").replace(">", "}") for r in app.url_map.iter_rules()
              if r.endpoint.startswith("marketing_api.")}
    assert routes and routes <= set(doc["paths"])
    assert "bearerToken" in doc["components"]["securitySchemes"]


def test_welcome_coupon_on_the_success_page(app: Flask) -> None:
    c = app.test_client()
    auth = token(app, role="store", store_id="s1")
    offer(c, auth, on_login=True, title="WiFi welcome")
    sms = app.config["TEST_SMS"]
    phone = Phone(app, "10.77.0.20")
    phone.login(sms, "13812345678", marketing=True)
    page = phone.get("/status?lang=en").get_data(as_text=True)
    assert "WiFi welcome" in page and "Show this code at the counter" in page
    with app.extensions["keliu"].engine.connect() as conn:
        code = conn.execute(sa.select(coupons.c.code)).scalar_one()
    assert code[:4] in page
    assert "2026-12-12 23:59" in page   # 7 local days from Dec 6, to the last minute of the day


def test_no_coupon_without_marketing_consent(app: Flask) -> None:
    c = app.test_client()
    auth = token(app, role="store", store_id="s1")
    offer(c, auth, on_login=True, title="WiFi welcome")
    phone = Phone(app, "10.77.0.20")
    phone.login(app.config["TEST_SMS"], "13812345678")
    page = phone.get("/status").get_data(as_text=True)
    assert "WiFi welcome" not in page and "送您一张优惠券" not in page
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(coupons)).scalar() == 0


LANDING = "http://example.com/some/page?x=1"


def test_coupon_is_shown_before_the_landing_redirect(app: Flask) -> None:
    c = app.test_client()
    offer(c, token(app, role="store", store_id="s1"), on_login=True, title="WiFi welcome")
    phone = Phone(app, "10.77.0.20")
    phone.get("/some/page?x=1", host="example.com")  # the page the phone first asked for, kept for after the login
    r = phone.login(app.config["TEST_SMS"], "13812345678", marketing=True)
    # a coupon was issued: the success page first, not the landing page
    assert r.status_code == 303 and r.headers["Location"] == "/status"
    page = phone.get("/status?lang=en").get_data(as_text=True)
    with app.extensions["keliu"].engine.connect() as conn:
        code = conn.execute(sa.select(coupons.c.code)).scalar_one()
    assert "WiFi welcome" in page and "2026-12-12 23:59" in page and code[:4] in page
    # the link on to the landing page comes after the coupon
    assert page.index('id="coupon-1"') < page.index(f'id="continue" href="{LANDING.replace("&", "&amp;")}"')
    again = phone.get("/status").get_data(as_text=True)  # the same coupon on a reload: nothing issued twice
    assert 'id="continue"' in again and 'id="coupon-2"' not in again
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(coupons)).scalar() == 1
    phone.post("/logout", data={"csrf_token": csrf_of(again)})
    assert 'id="continue"' not in phone.get("/status").get_data(as_text=True)
    # a page an earlier login left in the browser's session (one that ended without this logout), then a login
    # with no page to go on to: no stale link
    with phone.http.session_transaction() as s:
        s["wifi_landing"] = LANDING
    app.extensions["keliu"].clock.advance(3600)
    r = phone.login(app.config["TEST_SMS"], "13812345678", marketing=True)
    assert r.headers["Location"] == "/status"
    page = phone.get("/status").get_data(as_text=True)
    assert 'id="coupon-1"' in page and 'id="continue"' not in page


def test_no_coupon_keeps_the_landing_redirect(app: Flask) -> None:
    c = app.test_client()
    offer(c, token(app, role="store", store_id="s1"), on_login=True, title="WiFi welcome")
    phone = Phone(app, "10.77.0.20")
    phone.get("/some/page?x=1", host="example.com")
    r = phone.login(app.config["TEST_SMS"], "13812345678")  # no marketing consent: no coupon
    assert r.status_code == 303 and r.headers["Location"] == LANDING
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(coupons)).scalar() == 0


def test_json_login_answers_with_the_issued_coupon(app: Flask) -> None:
    c = app.test_client()
    offer(c, token(app, role="store", store_id="s1"), on_login=True, title="WiFi welcome")
    sms = app.config["TEST_SMS"]

    def login(ip: str, number: str, **consents: bool) -> dict[str, Any]:
        p = Phone(app, ip)
        p.get("/some/page?x=1", host="example.com")
        assert p.post("/api/login/sms/code", json={"phone": number}).status_code == 202
        r = p.post("/api/login/sms/verify", json={"phone": number, "code": sms.last["+86" + number],
                                                  "consents": {"terms": True, **consents}})
        assert r.status_code == 200, r.json
        return dict(r.json)

    got = login("10.77.0.20", "13812345678", marketing=True)
    with app.extensions["keliu"].engine.connect() as conn:
        code = conn.execute(sa.select(coupons.c.code)).scalar_one()
    assert got["continue_url"] == LANDING
    [coupon] = got["coupons"]
    assert coupon["title"] == "WiFi welcome" and coupon["code"].replace("-", "").replace(" ", "") == code
    assert (coupon["kind"], coupon["value"], coupon["min_spend_cents"]) == ("amount_off", 1000, 5000)
    assert coupon["valid_until_local"] == "2026-12-12 23:59"
    assert datetime.fromisoformat(coupon["valid_until"]) == datetime(2026, 12, 12, 16, 0, tzinfo=UTC)
    # no marketing consent: no coupon, nothing stored
    assert login("10.77.0.21", "13900139000")["coupons"] == []
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(coupons)).scalar() == 1


def test_statements_per_api_redemption(app: Flask) -> None:
    """Load-independent: the SQL statements one API redemption sends, once the token is known to the process. On
    PostgreSQL an offer that moves no counter takes 2 (the coupon read, then the guard and the ledger row in one
    statement); the token check costs none within its 5 s (keliu.accounts.tokens.CACHE_TTL_S)."""
    c = app.test_client()
    s1 = token(app, role="store", store_id="s1")
    oid = offer(c, s1, per_member_issue_limit=None, per_member_use_limit=None)
    member(app, "+8613812345678", True)
    codes = [c.post("/api/v1/stores/s1/coupons", json={"offer_id": oid, "phone": "13812345678"},
                    headers=s1).get_json()["code"] for _ in range(3)]
    engine = app.extensions["keliu"].engine
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        per = []
        for i, code in enumerate(codes):
            sent.clear()
            r = c.post("/api/v1/stores/s1/redemptions", headers=s1,
                       json={"code": code, "idempotency_key": f"n-{i}", "amount_cents": 6000})
            assert r.status_code == 201
            per.append(list(sent))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    if engine.dialect.name == "postgresql":
        assert per[1:] == [["SELECT", "WITH"]] * 2
    else:  # SQLite: one transaction (read, ledger row, guard)
        assert per[1:] == [["SELECT", "INSERT", "UPDATE"]] * 2


def test_a_known_token_is_trusted_for_its_ttl_and_revoked_at_once_here(app: Flask) -> None:
    engine = app.extensions["keliu"].engine
    _name, t = tokens.create_token(engine, role="store", store_id="s1", now=NOW, name="till")
    clock = [1000.0]
    cache = tokens.PrincipalCache(ttl_s=5.0, clock=lambda: clock[0])
    who, mall = cache.principal_at(engine, t, "s1")
    assert who is not None and (who.name, who.store_id, mall) == ("till", "s1", "m1")
    assert cache.principal_at(engine, t, "nope") == (who, None)  # no such store: no mall (the API: 403)
    # revoked by another process (keliu token revoke): this process trusts it until the entry is 5 s old
    with engine.begin() as conn:
        conn.execute(sa.update(tokens.api_tokens).values(revoked_at=NOW))
    clock[0] += 4.9
    assert cache.principal_at(engine, t, "s1")[0] == who
    clock[0] += 0.2
    assert cache.principal_at(engine, t, "s1") == (None, None)
    # a live token again, then revoked in this process: at once
    with engine.begin() as conn:
        conn.execute(sa.update(tokens.api_tokens).values(revoked_at=None))
    assert cache.principal_at(engine, t, "s1")[0] == who
    tokens.revoke_token(engine, "till", NOW)
    assert cache.principal_at(engine, t, "s1") == (None, None)
    assert cache.principal_at(engine, "kl_unknown", "s1") == (None, None)
