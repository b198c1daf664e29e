"""Staff cards, bindings, the counter's card codes and redemption flags against real PostgreSQL and SQLite."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from keliu import db
from keliu.accounts import users
from keliu.tenants import MALLS, STORES
from marketing import staff
from marketing.core import card
from marketing.core.attribution import Binding, Refused, Settings
from portal.store.members import upsert_member

T0 = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
KEY = card.card_key(b"t" * 32)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, migrated_sqlite_url: str,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr("keliu.accounts.users.HASH_METHOD", "pbkdf2:sha256:1000")  # scrypt costs ~0.2 s a hash
    url = migrated_sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("migrated_postgres_url"))
    eng = db.make_engine(url)
    db.upgrade(eng)
    with eng.begin() as conn:
        conn.execute(sa.insert(MALLS), [{"id": "m1", "name": "M1"}, {"id": "m2", "name": "M2"}])
        conn.execute(sa.insert(STORES), [{"id": "s1", "mall_id": "m1", "name": "S1", "timezone": "Asia/Shanghai"},
                                         {"id": "s2", "mall_id": "m1", "name": "S2", "timezone": "Asia/Shanghai"}])
    for name, store in (("alice", "s1"), ("bob", "s1"), ("carol", "s2")):
        users.create_user(eng, name, "pw-" + name, "staff", store_id=store)
    yield eng
    eng.dispose()


def tmember(eng: Any, phone: str = "+8613800000001") -> int:
    with eng.begin() as conn:
        return upsert_member(conn, store_id="s1", now=T0, phone_e164=phone)


def tcard(eng: Any, name: str, store: str = "s1") -> staff.StaffCard:
    with eng.begin() as conn:
        return staff.ensure_card(conn, name, store, T0)


def test_card_code_is_used_once(engine: Any) -> None:
    member = tmember(engine)
    token = card.sign(KEY, "m1", member, int(T0.timestamp()), b"n" * 12)
    with engine.begin() as conn:
        assert staff.use_card(conn, KEY, token, "m1", "s1", "alice", T0 + timedelta(seconds=5)).member_id == member
    with pytest.raises(card.CardRejected) as exc, engine.begin() as conn:
        staff.use_card(conn, KEY, token, "m1", "s2", "carol", T0 + timedelta(seconds=6))
    assert exc.value.reason == "replayed"
    with pytest.raises(card.CardRejected) as exc, engine.begin() as conn:
        staff.use_card(conn, KEY, card.sign(KEY, "m1", member, int(T0.timestamp()), b"o" * 12), "m1", "s1",
                       "alice", T0 + timedelta(seconds=61))
    assert exc.value.reason == "expired"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(staff.card_uses)).scalar() == 1


def test_staff_card_is_stable_and_reissued(engine: Any) -> None:
    a = tcard(engine, "alice")
    assert tcard(engine, "alice") == a and len(a.code) > 16
    with engine.begin() as conn:
        assert staff.card_by_code(conn, a.code) == a
        staff.reissue_card(conn, "alice")
        assert staff.card_by_code(conn, a.code) is None


def test_bindings_last_touch_protection_and_attribution(engine: Any) -> None:
    member = tmember(engine)
    alice, bob = tcard(engine, "alice"), tcard(engine, "bob")
    with engine.begin() as conn:
        staff.set_settings(conn, "s1", Settings(window_days=15, protection_days=2))
        assert isinstance(staff.scan(conn, member, alice, T0, "Asia/Shanghai"), Binding)
    with engine.begin() as conn:
        refused = staff.scan(conn, member, bob, T0 + timedelta(days=1), "Asia/Shanghai")
        assert refused == Refused("alice", T0 + timedelta(days=2))
        assert isinstance(staff.scan(conn, member, bob, T0 + timedelta(days=3), "Asia/Shanghai"), Binding)
    with engine.connect() as conn:
        assert staff.in_charge(conn, member, "s1", T0 - timedelta(seconds=1)) is None
        assert staff.in_charge(conn, member, "s1", T0 + timedelta(days=2)) == "alice"
        assert staff.in_charge(conn, member, "s1", T0 + timedelta(days=4)) == "bob"
        assert staff.in_charge(conn, member, "s2", T0 + timedelta(days=4)) is None  # bindings are per store
        # bob's window: 15 local days after 4 Dec 12:00 Shanghai ends at midnight Shanghai after 19 Dec
        assert staff.in_charge(conn, member, "s1", datetime(2026, 12, 19, 15, 59, tzinfo=UTC)) == "bob"
        assert staff.in_charge(conn, member, "s1", datetime(2026, 12, 19, 16, 0, tzinfo=UTC)) is None


def test_redemption_flags(engine: Any) -> None:
    member, other = tmember(engine), tmember(engine, "+8613800000002")
    alice = tcard(engine, "alice")
    tcard(engine, "bob")
    with engine.begin() as conn:
        staff.set_settings(conn, "s1", Settings(burst_count=3, burst_minutes=10))
        staff.set_phone_hash(conn, "bob", "hash-of-bobs-phone")
        staff.scan(conn, member, alice, T0, "Asia/Shanghai")

    def redeem(who: str, mid: int, ref: str, at: datetime, phone_hash: str | None = None) -> tuple[str, ...]:
        with engine.begin() as conn:
            return staff.record_redemption(conn, store_id="s1", staff=who, member_id=mid, reference=ref,
                                           amount_cents=10000, discount_cents=1000, at=at,
                                           member_phone_hash=phone_hash)

    assert redeem("bob", member, "r1", T0 + timedelta(hours=1)) == ()  # alice's customer served by bob
    assert redeem("bob", member, "r1", T0 + timedelta(hours=1)) == ()  # retried: recorded once
    assert redeem("alice", member, "r2", T0 + timedelta(hours=2)) == ("self_attributed",)
    assert redeem("bob", other, "r3", T0 + timedelta(hours=3), "hash-of-bobs-phone") == ("own_coupon",)
    assert redeem("bob", other, "r4", T0 + timedelta(hours=3, minutes=1)) == ()
    assert redeem("bob", other, "r5", T0 + timedelta(hours=3, minutes=2)) == ("burst",)
    with engine.connect() as conn:
        found = staff.flags(conn, "s1", T0, T0 + timedelta(days=1))
        recorded = conn.execute(sa.select(staff.staff_redemptions.c.reference, staff.staff_redemptions.c.attributed_to)
                                .order_by(staff.staff_redemptions.c.id)).all()
    assert [tuple(r) for r in recorded] == [("r1", "alice"), ("r2", "alice"), ("r3", None), ("r4", None),
                                            ("r5", None)]
    assert [(f["staff"], f["kind"], f["reference"]) for f in found] == [
        ("alice", "self_attributed", "r2"), ("bob", "own_coupon", "r3"), ("bob", "burst", "r5")]
