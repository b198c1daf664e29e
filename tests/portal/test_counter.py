"""The counter page ``/counter``: who may use it, a member's card scanned (single use), a coupon looked up and
redeemed once however often the form is sent, attribution and flags recorded."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu.accounts import users
from keliu.gate import MemoryGate
from marketing import staff
from marketing.core import card
from marketing.core.offers import OfferSpec
from marketing.store import coupons
from portal.edges.sms_backends import ConsoleSms
from portal.store.members import upsert_member
from tests.portal.conftest import FakeClock, csrf_of, make_app

STORE, OTHER = "demo-store", "other-store"
STORES = [{"id": STORE, "mall": "demo-mall"}, {"id": OTHER, "mall": "demo-mall"},
          {"id": "far", "mall": "far-mall"}]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def app(request: pytest.FixtureRequest, sqlite_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
        neighbours: dict[str, str]) -> Flask:
    db_url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("migrated_postgres_url"))
    a = make_app(db_url, var_dir, gate, clock, sms, neighbours, stores=STORES,
                 malls=[{"id": "demo-mall"}, {"id": "far-mall"}])
    engine = a.extensions["keliu"].engine
    users.create_user(engine, "alice", "pw-alice", "staff", store_id=STORE)
    users.create_user(engine, "olga", "pw-olga", "staff", store_id=OTHER)
    return a


def staff_client(app: Flask, name: str, lang: str = "en") -> Any:
    """A staff member's browser, asking for English by Accept-Language (the answers below are read in English)."""
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    token = csrf_of(c.get("/admin/login").get_data(as_text=True))
    r = c.post("/admin/login", data={"csrf_token": token, "name": name, "password": "pw-" + name})
    assert r.status_code in (302, 303), r.get_data(as_text=True)
    return c


def toffer(app: Flask, stores: tuple[str, ...] = (STORE,), **kw: Any) -> int:
    svc = app.extensions["keliu"]
    spec = OfferSpec(title="满100减20", kind="amount_off", value=2000, stores=stores, min_spend_cents=10000,
                     valid_days=7, **kw)
    with svc.engine.begin() as conn:
        return coupons.create_offer(conn, spec, store_id=stores[0], now=svc.now(), created_by="test")


def tcoupon(app: Flask, offer_id: int, member_id: int | None, store: str = STORE) -> str:
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        return coupons.issue_coupon(conn, offer_id=offer_id, member_id=member_id, store_id=store, channel="staff",
                                    now=svc.now()).display_code


def tmember(app: Flask, e164: str = "+8613812345678") -> int:
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        return upsert_member(conn, store_id=STORE, now=svc.now(), phone_e164=e164)


def tcard_code(app: Flask, member_id: int, mall: str = "demo-mall", nonce: bytes = b"n" * 12) -> str:
    svc = app.extensions["keliu"]
    return card.sign(card.card_key(svc.keys.token), mall, member_id, int(svc.clock()), nonce)


def post(c: Any, path: str, **data: str) -> Any:
    token = csrf_of(c.get("/counter").get_data(as_text=True))
    return c.post(path, data={"csrf_token": token, **data})


def test_counter_needs_a_user_who_may_serve_the_store(app: Flask, client: Any) -> None:
    r = client.get("/counter")
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]
    engine = app.extensions["keliu"].engine
    users.create_user(engine, "far-mall-user", "pw-far-mall-user", "mall", mall_id="far-mall")
    assert staff_client(app, "far-mall-user").get("/counter").status_code == 403
    page = staff_client(app, "alice").get("/counter")
    assert page.status_code == 200 and 'id="scan-start"' in page.get_data(as_text=True)
    assert "vendor/jsQR.js" in page.get_data(as_text=True)


def test_member_card_lists_the_coupons_usable_here_once(app: Flask) -> None:
    member_id = tmember(app)
    here = tcoupon(app, toffer(app), member_id)
    tcoupon(app, toffer(app, (OTHER,)), member_id, OTHER)  # another store's: not listed
    c = staff_client(app, "alice")
    code = tcard_code(app, member_id)
    html = post(c, "/counter/scan", code=code).get_data(as_text=True)
    assert 'id="counter-member"' in html and "5678" in html and "13812345678" not in html
    assert re.findall(r'data-code="([^"]+)"', html) == [here]
    again = post(c, "/counter/scan", code=code)
    assert again.status_code == 409 and "already used" in again.get_data(as_text=True)
    far = post(c, "/counter/scan", code=tcard_code(app, member_id, mall="far-mall", nonce=b"f" * 12))
    assert far.status_code == 409 and "another mall" in far.get_data(as_text=True)
    forged = post(c, "/counter/scan", code=code.replace(f".{member_id}.", f".{member_id + 1}."))
    assert forged.status_code == 409 and "not valid" in forged.get_data(as_text=True)


def test_redeem_once_with_a_double_tap(app: Flask) -> None:
    member_id = tmember(app)
    code = tcoupon(app, toffer(app), member_id)
    c = staff_client(app, "alice")
    html = post(c, "/counter/scan", code=code.lower().replace("-", "")).get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', html)
    assert key is not None
    form = {"code": code, "key": key.group(1), "basket": "128.50"}
    first = post(c, "/counter/redeem", **form)
    assert first.status_code == 200 and 'id="counter-discount">20.00<' in first.get_data(as_text=True)
    second = post(c, "/counter/redeem", **form)  # the same attempt again: the first answer, nothing new
    assert second.status_code == 200 and "same attempt" in second.get_data(as_text=True)
    third = post(c, "/counter/redeem", **(form | {"key": "another-attempt-key-123"}))
    assert third.status_code == 409 and "Already redeemed" in third.get_data(as_text=True)
    engine = app.extensions["keliu"].engine
    with engine.connect() as conn:
        kinds = conn.execute(sa.text("SELECT kind, basket_cents, discount_cents, staff FROM redemptions")).all()
        recorded = conn.execute(sa.select(staff.staff_redemptions.c.staff, staff.staff_redemptions.c.member_id,
                                          staff.staff_redemptions.c.amount_cents)).all()
    assert [tuple(r) for r in kinds] == [("redeem", 12850, 2000, "alice")]
    assert [tuple(r) for r in recorded] == [("alice", member_id, 12850)]


def test_refusals_at_the_counter(app: Flask) -> None:
    member_id = tmember(app)
    mine = tcoupon(app, toffer(app), member_id)
    olgas = tcoupon(app, toffer(app, (OTHER,)), member_id, OTHER)
    c = staff_client(app, "alice")
    r = post(c, "/counter/redeem", code=olgas, key="k" * 20, basket="200")
    assert r.status_code == 403 and "cannot be redeemed in this store" in r.get_data(as_text=True)
    # a staff member of another store cannot choose this store
    r = post(staff_client(app, "olga"), "/counter/redeem", code=mine, key="o" * 20, basket="200", store=STORE)
    assert r.status_code == 403
    r = post(c, "/counter/redeem", code=mine, key="m" * 20, basket="99.99")
    assert r.status_code == 409 and "minimum spend" in r.get_data(as_text=True)
    for bad in ("", "12.345", "-5", "1e3", "abc"):
        assert post(c, "/counter/redeem", code=mine, key="b" * 20, basket=bad).status_code == 400
    assert post(c, "/counter/scan", code="NOT-A-CODE").status_code == 404
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM redemptions WHERE kind = 'redeem'")).scalar() == 0


def test_own_attributed_member_is_flagged(app: Flask) -> None:
    member_id = tmember(app)
    svc = app.extensions["keliu"]
    with svc.engine.begin() as conn:
        alice = staff.ensure_card(conn, "alice", STORE, svc.now())
        staff.scan(conn, member_id, alice, svc.now(), "Asia/Shanghai")
    code = tcoupon(app, toffer(app), member_id)
    c = staff_client(app, "alice")
    assert post(c, "/counter/redeem", code=code, key="a" * 20, basket="150").status_code == 200
    with svc.engine.connect() as conn:
        flags = conn.execute(sa.select(staff.staff_flags.c.staff, staff.staff_flags.c.kind)).all()
        attributed = conn.execute(sa.select(staff.staff_redemptions.c.attributed_to)).scalar()
    assert [tuple(f) for f in flags] == [("alice", "self_attributed")] and attributed == "alice"


def test_staff_card_page(app: Flask) -> None:
    c = staff_client(app, "alice")
    page = c.get("/counter/card")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="staff-qr"' in html and "<svg" in html
    with app.extensions["keliu"].engine.connect() as conn:
        code = conn.execute(sa.select(staff.staff_cards.c.code)).scalar()
    assert f"/member/staff/{code}" in html


def test_staff_redeeming_their_own_coupon_is_flagged(app: Flask) -> None:
    svc = app.extensions["keliu"]
    member_id = tmember(app, "+8613900000009")  # alice's own membership
    with svc.engine.begin() as conn:
        staff.ensure_card(conn, "alice", STORE, svc.now())
        staff.set_phone_hash(conn, "alice", staff.phone_hash(svc.keys.token, "+8613900000009"))
    code = tcoupon(app, toffer(app), member_id)
    assert post(staff_client(app, "alice"), "/counter/redeem", code=code, key="s" * 20, basket="150").status_code == 200
    with svc.engine.connect() as conn:
        kinds = conn.execute(sa.select(staff.staff_flags.c.kind)).scalars().all()
    assert kinds == ["own_coupon"]


def test_concurrent_taps_redeem_once(app: Flask) -> None:
    """Eight requests of one attempt at once (a stuttering tap, a proxy's retry): one redemption, every answer 200
    with the same ledger row."""
    from concurrent.futures import ThreadPoolExecutor

    code = tcoupon(app, toffer(app), tmember(app))
    c = staff_client(app, "alice")
    token = csrf_of(c.get("/counter").get_data(as_text=True))
    cookie = c.get_cookie("keliu")
    assert cookie is not None

    def tap(_: int) -> tuple[int, str]:
        other = app.test_client()
        other.set_cookie("keliu", cookie.value)
        r = other.post("/counter/redeem", data={"csrf_token": token, "code": code, "key": "t" * 24,
                                                "basket": "150"})
        m = re.search(r"Ledger #(\d+)", r.get_data(as_text=True))
        return r.status_code, m.group(1) if m else ""

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(tap, range(8)))
    assert {a[0] for a in answers} == {200} and len({a[1] for a in answers}) == 1, answers
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM redemptions")).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(staff.staff_redemptions)).scalar() == 1
