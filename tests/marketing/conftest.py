"""Fixtures of the marketing tests: ``engine`` (a migrated database: SQLite, and PostgreSQL where a test asks for
``db`` = "postgresql"), a mall with stores in three time zones, members with and without marketing consent, and
builders (``toffer``) for offers."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu import db
from marketing.core.offers import parse_offer
from marketing.store import coupons as store
from portal.store.marketing_members import PortalMembers
from tests.conftest import fresh_postgres

#: a fixed "now": 2026-12-06 10:00 UTC (18:00 in Shanghai)
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
MEMBER_YES = 1
MEMBER_NO = 2
PHONE_YES = "13812345678"
PHONE_NO = "13912345678"


def seed(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO malls (id, name) VALUES ('m1', 'Mall 1'), ('m2', 'Mall 2')"))
        conn.execute(sa.text(
            "INSERT INTO stores (id, mall_id, name, timezone) VALUES "
            "('s1', 'm1', 'A', 'Asia/Shanghai'), ('s2', 'm1', 'B', 'Asia/Shanghai'), "
            "('w1', 'm1', 'West', 'America/Los_Angeles'), ('x1', 'm2', 'Other mall', 'Asia/Shanghai')"))
        for mid, phone, granted in ((MEMBER_YES, "+8613812345678", True), (MEMBER_NO, "+8613912345678", False)):
            conn.execute(sa.text("INSERT INTO members (id, phone_e164, created_at, first_store_id, last_seen_at) "
                                 "VALUES (:i, :p, :t, 's1', :t)"), {"i": mid, "p": phone, "t": NOW})
            conn.execute(sa.text("INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang) "
                                 "VALUES (:i, 'marketing', 'v1', :g, :t, 's1', 'zh-CN')"),
                         {"i": mid, "g": granted, "t": NOW})


@pytest.fixture(scope="session")
def seeded_sqlite_template(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path) -> Path:
    """The session's migrated SQLite template (tests/conftest.py), seeded with the marketing tests' members."""
    import shutil

    path = tmp_path_factory.mktemp("mkt-template") / "keliu.db"
    shutil.copy(migrated_sqlite_template, path)
    engine = db.make_engine(f"sqlite:///{path}")
    seed(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path, seeded_sqlite_template: Path) -> Iterator[Engine]:
    """A migrated, seeded database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        import shutil

        shutil.copy(seeded_sqlite_template, tmp_path / "k.db")
        e = db.make_engine(f"sqlite:///{tmp_path / 'k.db'}")
        yield e
        e.dispose()
        return
    with fresh_postgres(migrated=True) as url:
        e = db.make_engine(url)
        db.upgrade(e)
        seed(e)
        yield e
        e.dispose()


@pytest.fixture
def members() -> PortalMembers:
    return PortalMembers()


def toffer(engine: Engine, store_id: str = "s1", **fields: Any) -> int:
    """An offer created as the API would: 10 yuan off from 50, valid 7 days, redeemable at s1 and s2."""
    body: dict[str, Any] = {"title": "¥10 off ¥50", "kind": "amount_off", "value": 1000, "min_spend_cents": 5000,
                            "valid_days": 7, "stores": ["s1", "s2"]}
    body.update(fields)
    with engine.begin() as conn:
        allowed = frozenset(conn.execute(sa.text("SELECT id FROM stores")).scalars())
        return store.create_offer(conn, parse_offer(body, store_id, allowed), store_id=store_id, now=NOW,
                                  created_by="test")


def tcoupon(engine: Engine, offer_id: int, member_id: int | None = MEMBER_YES, store_id: str = "s1",
            now: datetime = NOW) -> str:
    with engine.begin() as conn:
        return store.issue_coupon(conn, offer_id=offer_id, member_id=member_id, store_id=store_id, channel="api",
                                  now=now).code


def tredeem(code: str, key: str = "k1", store_id: str = "s1", basket: int = 6000,
            txn: str | None = None) -> store.RedeemRequest:
    return store.RedeemRequest(store_id=store_id, code=code, idempotency_key=key, basket_cents=basket,
                               staff="alice", pos_txn_id=txn)
