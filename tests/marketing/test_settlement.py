"""The one definition of the trade-area settlement and of the offer figures (money booked: a redemption in the
period of its time, a rollback in the period of its own), on SQLite and PostgreSQL, through every caller: the
report functions (:mod:`marketing.report`), the dashboard section's JSON and its CSV, for the mall and for a
store. A table of cases: a redemption in the range, a rollback in the next range, a cross-store redemption, a
rollback in the same range; a closed day's settlement does not change when a later rollback is booked."""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from keliu import keys
from marketing import report
from marketing.core.offers import OfferSpec
from marketing.store import coupons
from tests.marketing.test_api import app  # noqa: F401  (the portal app on SQLite, then PostgreSQL)
from tests.portal.conftest import csrf_of

pytestmark = pytest.mark.integration

D1, D2 = date(2026, 12, 6), date(2026, 12, 7)  # local days in Shanghai (the stores' and the config's zone)
NAMES = {"s1": "A", "s2": "B"}  # as the mall's view names the stores (tests.marketing.test_api.TENANTS)


def at(day: date, hour: int) -> datetime:
    """``hour`` o'clock local (UTC+8) on ``day``, as a UTC instant."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=8)


def login(app: Flask) -> FlaskClient:  # noqa: F811
    c = app.test_client()
    token = csrf_of(c.get("/admin/login").get_data(as_text=True))
    r = c.post("/admin/login", data={"csrf_token": token, "name": "admin",
                                     "password": keys.admin_password(app.extensions["keliu"].cfg.var_path)})
    assert r.status_code in (302, 303), r.get_data(as_text=True)
    return c


def scenario(app: Flask) -> None:  # noqa: F811
    """Offer A of s1 (redeemable at s1 and s2: the trade-area library), offer B of s2; ¥10 off every ¥80 basket."""
    eng = app.extensions["keliu"].engine
    spec = {"kind": "amount_off", "value": 1000, "min_spend_cents": 5000, "valid_days": 7,
            "per_member_issue_limit": None, "per_member_use_limit": None}
    with eng.begin() as conn:
        a = coupons.create_offer(conn, OfferSpec(title="A", stores=("s1", "s2"), **spec), store_id="s1",
                                 now=at(D1, 8), created_by="t")
        b = coupons.create_offer(conn, OfferSpec(title="B", stores=("s2",), **spec), store_id="s2",
                                 now=at(D1, 8), created_by="t")
        code = {name: coupons.issue_coupon(conn, offer_id=offer, member_id=None, store_id=store, channel="api",
                                           now=at(D1, 9)).code
                for name, offer, store in (("a1", a, "s1"), ("a2", a, "s1"), ("a3", a, "s1"), ("b1", b, "s2"),
                                           ("b2", b, "s2"))}

    def redeem(name: str, store: str, when: datetime) -> None:
        coupons.redeem(eng, coupons.RedeemRequest(store_id=store, code=code[name], idempotency_key=name,
                                                  basket_cents=8000, staff=f"clerk-{store}"), when)

    def undo(name: str, store: str, when: datetime) -> None:
        coupons.rollback(eng, coupons.RollbackRequest(store_id=store, original_key=name,
                                                      idempotency_key=f"undo-{name}", staff="manager"), when)

    redeem("a1", "s1", at(D1, 10))   # redeemed in range, at the issuing store
    redeem("a2", "s2", at(D1, 11))   # cross-store: A of s1 redeemed at s2
    redeem("a3", "s2", at(D1, 12))   # cross-store, rolled back the next day
    redeem("b1", "s2", at(D1, 13))   # rolled back the same day
    undo("b1", "s2", at(D1, 14))
    closed = settlement_of(app, D1, D1)
    undo("a3", "s2", at(D2, 10))     # rollback in the next range
    redeem("b2", "s2", at(D2, 11))
    assert settlement_of(app, D1, D1) == closed  # a closed day never changes


def settlement_of(app: Flask, start: date, end: date) -> dict[str, Any]:  # noqa: F811
    with app.extensions["keliu"].engine.connect() as conn:
        return report.settlement(conn, "m1", *report.instants(start, end, "Asia/Shanghai"))


#: (first day, last day) → pairs (issued by, redeemed at, redemptions, discount, baskets) and, per store, the
#: offers' (title, redeemed, discount) as the store's view shows them
CASES = [
    ((D1, D1), [("s1", "s1", 1, 1000, 8000), ("s1", "s2", 2, 2000, 16000)],
     {"s1": [("A", 1, 1000)], "s2": [("A", 2, 2000), ("B", 0, 0)]}),
    ((D2, D2), [("s1", "s2", -1, -1000, -8000), ("s2", "s2", 1, 1000, 8000)],
     {"s1": [("A", 0, 0)], "s2": [("A", -1, -1000), ("B", 1, 1000)]}),
    ((D1, D2), [("s1", "s1", 1, 1000, 8000), ("s1", "s2", 1, 1000, 8000), ("s2", "s2", 1, 1000, 8000)],
     {"s1": [("A", 1, 1000)], "s2": [("A", 1, 1000), ("B", 1, 1000)]}),
]


def csv_rows(c: FlaskClient, url: str) -> list[list[str]]:
    r = c.get(url)
    assert r.status_code == 200
    return list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))


def table_in_csv(rows: list[list[str]], title: str) -> list[list[str]]:
    i = rows.index([title]) + 2  # the title, the columns, then the rows up to a blank line
    out = []
    while i < len(rows) and rows[i]:
        out.append(rows[i])
        i += 1
    return out


def test_every_caller_gives_the_same_booked_numbers(app: Flask) -> None:  # noqa: F811
    scenario(app)
    app.extensions["keliu"].clock.t = at(D2, 20).timestamp()
    c = login(app)
    for (start, end), pairs, offers in CASES:
        q = f"?lang=en&start={start}&end={end}"
        want = [{"issued_by": i, "redeemed_at": r, "redemptions": n, "discount_cents": d, "basket_cents": b}
                for i, r, n, d, b in pairs]
        assert settlement_of(app, start, end)["pairs"] == want, (start, end)
        view = c.get(f"/api/v1/malls/m1/marketing{q}").get_json()
        assert view["tables"][0]["id"] == "pairs"
        assert [[cell["value"] for cell in row] for row in view["tables"][0]["rows"]] == [
            [NAMES[p["issued_by"]], NAMES[p["redeemed_at"]], p["redemptions"], p["discount_cents"],
             p["basket_cents"]] for p in want], (start, end)
        texts = [[cell["text"] for cell in row] for row in view["tables"][0]["rows"]]
        assert table_in_csv(csv_rows(c, f"/api/v1/malls/m1/marketing.csv{q}"), view["tables"][0]["title"]) == texts
        per_store = {s["store"]: s for s in settlement_of(app, start, end)["stores"]}
        for store, expected in offers.items():
            with app.extensions["keliu"].engine.connect() as conn:
                rows = report.offer_rows(conn, store, *report.instants(start, end, "Asia/Shanghai"))
            assert [(o["title"], o["redeemed"], o["discount_cents"]) for o in rows] == expected, (store, start)
            sv = c.get(f"/api/v1/stores/{store}/marketing{q}").get_json()["tables"][0]
            assert [(r[0]["value"], r[3]["value"], r[5]["value"]) for r in sv["rows"]] == expected, (store, start)
            assert table_in_csv(csv_rows(c, f"/api/v1/stores/{store}/marketing.csv{q}"), sv["title"]) == [
                [cell["text"] for cell in r] for r in sv["rows"]]
            # the offers' discount at a store is what the settlement says was given there
            given_here = sum(p["discount_cents"] for p in want if p["redeemed_at"] == store)
            assert sum(d for _t, _n, d in expected) == given_here, (store, start)
            if store in per_store:
                s = per_store[store]
                assert s["issuer_discount_cents"] == sum(p["discount_cents"] for p in want if p["issued_by"] == store)
