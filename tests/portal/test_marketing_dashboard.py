"""The dashboard's marketing section in the portal app: tenancy, the page, JSON, CSV, the link from the dashboard."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from keliu.accounts import users
from keliu.gate import MemoryGate
from marketing.core.offers import OfferSpec
from marketing.store import coupons
from portal.edges.sms_backends import ConsoleSms
from portal.store.members import upsert_member
from tests.portal.conftest import FakeClock, csrf_of, make_app

STORES = [{"id": "s1", "mall": "m1", "name": "一店"}, {"id": "s2", "mall": "m1", "name": "二店"}]


@pytest.fixture
def app(db_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
        neighbours: dict[str, str]) -> Flask:
    a = make_app(db_url, var_dir, gate, clock, sms, neighbours, stores=STORES, malls=[{"id": "m1", "name": "商场"}],
                 portal={"store": "s1"})
    eng = a.extensions["keliu"].engine
    users.create_user(eng, "boss1", "pw-boss1", "store", store_id="s1")
    users.create_user(eng, "boss2", "pw-boss2", "store", store_id="s2")
    users.create_user(eng, "mall", "pw-mall", "mall", mall_id="m1")
    users.create_user(eng, "alice", "pw-alice", "staff", store_id="s1")
    svc = a.extensions["keliu"]
    now = svc.now()
    with eng.begin() as conn:
        member = upsert_member(conn, store_id="s1", now=now, phone_e164="+8613812345678")
        offer = coupons.create_offer(conn, OfferSpec(title="满100减20", kind="amount_off", value=2000,
                                                     stores=("s1", "s2"), min_spend_cents=10000, valid_days=7),
                                     store_id="s1", now=now, created_by="test")
        code = coupons.issue_coupon(conn, offer_id=offer, member_id=member, store_id="s1", channel="staff",
                                    now=now).code
    coupons.redeem(eng, coupons.RedeemRequest(store_id="s2", code=code, idempotency_key="k1", basket_cents=15000,
                                              staff="bob"), now + timedelta(minutes=5))
    return a


def login(app: Flask, name: str) -> Any:
    c = app.test_client()
    token = csrf_of(c.get("/admin/login").get_data(as_text=True))
    c.post("/admin/login", data={"csrf_token": token, "name": name, "password": "pw-" + name})
    return c


def test_store_section_page_json_csv_and_link(app: Flask) -> None:
    c = login(app, "boss1")
    html = c.get("/dashboard/store/s1?lang=zh-CN").get_data(as_text=True)
    assert 'id="section-marketing" href="/dashboard/store/s1/marketing?lang=zh-CN"' in html
    page = c.get("/dashboard/store/s1/marketing?lang=zh-CN")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "营销 · 一店" in text and 'id="mk-offers"' in text and "满100减20" in text
    assert page.headers["Cache-Control"] == "private, no-store"
    data = c.get("/api/v1/stores/s1/marketing?lang=en").get_json()
    offers = data["tables"][0]
    assert offers["columns"][:4] == ["Offer", "Kind", "Issued", "Redeemed"]
    assert [cell["value"] for cell in offers["rows"][0]][2:4] == [1, 0]  # issued by s1, redeemed at s2
    raw = c.get("/api/v1/stores/s1/marketing.csv?lang=en")
    assert raw.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(raw.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "Marketing · 一店" and ["Offers"] in rows


def test_mall_settlement(app: Flask) -> None:
    c = login(app, "mall")
    data = c.get("/api/v1/malls/m1/marketing?lang=zh-CN").get_json()
    pairs = data["tables"][0]["rows"]
    assert [[cell["text"] for cell in r] for r in pairs] == [["一店", "二店", "1", "¥20.00", "¥150.00"]]
    assert c.get("/dashboard/mall/m1/marketing").status_code == 200
    assert 'id="section-marketing"' in c.get("/dashboard/mall/m1").get_data(as_text=True)


def test_tenancy(app: Flask) -> None:
    assert app.test_client().get("/api/v1/stores/s1/marketing").status_code == 401
    assert login(app, "boss2").get("/api/v1/stores/s1/marketing").status_code == 403
    assert login(app, "alice").get("/dashboard/store/s1/marketing").status_code == 403
    assert login(app, "boss1").get("/api/v1/malls/m1/marketing").status_code == 403
    assert login(app, "mall").get("/api/v1/stores/nope/marketing").status_code == 404
    assert login(app, "boss1").get("/api/v1/stores/s1/marketing?start=2026-13-01").status_code == 400
