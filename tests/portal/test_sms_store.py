"""What SMS logins store through the real app: on PostgreSQL (the one-statement executor,
``portal.store.login_store.execute_pg``, and the one-statement code check) every column of every table the same as on
SQLite (the portable executor); and the one-statement rate limit (``limits.take``) decides like check-then-count.
``tests/portal/test_login_store.py`` compares the executors themselves, for SMS and WeChat logins."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from keliu import db
from keliu.gate import MemoryGate
from portal.edges.sms_backends import ConsoleSms
from portal.errors import RateLimited
from portal.store import limits
from portal.store.models import (
    consents,
    devices,
    landing_urls,
    logins,
    members,
    portal_sessions,
    rate_events,
    sms_codes,
)
from tests.portal.conftest import FakeClock, Phone, every_row, make_app

TENANTS = {"malls": [{"id": "m1", "name": "Mall"}], "stores": [{"id": "s1", "mall": "m1"}, {"id": "s2", "mall": "m1"}]}
NEIGHBOURS = {"10.77.0.20": "3c:22:fb:00:00:01", "10.77.0.21": "3c:22:fb:00:00:02"}


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a login writes, without surrogate ids nobody refers to (sequences may skip on PostgreSQL)."""
    tables: dict[str, tuple[sa.Table, list[str]]] = {
        "members": (members, ["phone_e164", "wechat_openid", "created_at", "first_store_id", "last_seen_at"]),
        "consents": (consents, ["member_id", "kind", "version", "granted", "ts", "store_id", "lang"]),
        "logins": (logins, ["ts", "store_id", "member_id", "device_id", "method", "ip"]),
        "devices": (devices, ["device_id", "member_id", "store_id", "first_seen", "last_seen", "reauth_until",
                              "bound_ip", "lease_tag"]),
        "portal_sessions": (portal_sessions, ["id", "member_id", "device_id", "store_id", "ip", "method",
                                              "started_at", "until", "last_activity", "bytes_up", "bytes_down",
                                              "ended_at", "end_reason"]),
        "sms_codes": (sms_codes, ["phone_hash", "device_id", "tries", "used_at"]),
        "landing_urls": (landing_urls, ["device_id", "url"]),
    }
    out = {}
    with engine.connect() as conn:
        # member ids by phone: an upsert of an existing member uses up a sequence value on PostgreSQL
        phone_of = dict(conn.execute(sa.select(members.c.id, members.c.phone_e164)).all())
        for name, (table, cols) in tables.items():
            rows = conn.execute(sa.select(*[table.c[c] for c in cols])).mappings().all()
            out[name] = sorted(tuple(phone_of[v] if k == "member_id" else v for k, v in r.items()) for r in rows)
    return out


def scenario(url: str, var_dir: Path) -> tuple[dict[str, list[tuple[Any, ...]]], list[Any], list[Any], Any]:
    """One phone logs in at s1 agreeing to re-authorization, is sent to the page it first asked for, logs in again
    (its open session replaced), then at s2 without re-authorization (withdrawn in both stores); a second
    shopper's phone logs in at s2; a wrong code and a replayed code store nothing of a login."""
    clock, sms = FakeClock(), ConsoleSms(io.StringIO())
    gate = MemoryGate(clock)
    # the first phone's DHCP lease is on the file, the second shopper's is not (its login is unconfirmed)
    lease_file = var_dir / "dnsmasq.leases"
    lease_file.write_text(f"{int(clock.t) + 86400} 3c:22:fb:00:00:01 10.77.0.20 phone-a 01:3c:22:fb:00:00:01\n")
    app1 = make_app(url, var_dir, gate, clock, sms, NEIGHBOURS, portal={"store": "s1", "dhcp_leases": str(lease_file)},
                    **TENANTS)
    app2 = make_app(url, var_dir, gate, clock, sms, NEIGHBOURS, portal={"store": "s2", "dhcp_leases": str(lease_file)},
                    **TENANTS)
    answers: list[Any] = []
    a, b = Phone(app1, "10.77.0.20"), Phone(app2, "10.77.0.20")
    a.get("/some/page?x=1", host="example.com")  # the landing URL kept for after the login
    answers.append(_login(a, sms, "13812345678", reauth=True, marketing=True))
    clock.advance(60)
    answers.append(_login(a, sms, "13812345678", analytics=True))
    clock.advance(600)
    answers.append(_login(b, sms, "13812345678"))
    clock.advance(5)
    answers.append(_login(Phone(app2, "10.77.0.21"), sms, "13900000001", reauth=True))
    clock.advance(61)
    assert b.post("/api/login/sms/code", json={"phone": "13812345678"}).status_code == 202
    r = b.post("/api/login/sms/verify", json={"phone": "13812345678", "code": "000000" if
                                              sms.last["+8613812345678"] != "000000" else "111111",
                                              "consents": {"terms": True}})
    answers.append((r.status_code, r.json))
    # every table by reflection; the codes' hashes and the admin's salted password hash are random draws
    rows = every_row(url, {"sms_codes": {"code_hash"}, "admin_users": {"password_hash"}})
    return snapshot(app1.extensions["keliu"].engine), answers, list(gate.log), rows


def _login(phone: Phone, sms: ConsoleSms, number: str, **consent: bool) -> Any:
    assert phone.post("/api/login/sms/code", json={"phone": number}).status_code == 202
    code = sms.last["+86" + number]
    body = {"phone": number, "code": code, "consents": {"terms": True, **consent}}
    r = phone.post("/api/login/sms/verify", json=body)
    replay = phone.post("/api/login/sms/verify", json=body)
    return (r.status_code, r.json, replay.status_code, replay.json["error"])


@pytest.mark.integration
def test_postgresql_one_statement_login_stores_what_the_portable_path_stores(sqlite_url: str, migrated_postgres_url: str,
                                                                              var_dir: Path) -> None:
    portable = scenario(sqlite_url, var_dir)
    one_statement = scenario(migrated_postgres_url, var_dir)  # the same keys: the same device ids and hashes
    snap, answers, _gate_log, _rows = portable
    assert answers[0][1]["continue_url"] == "http://example.com/some/page?x=1" and answers[1][1]["continue_url"] is None
    assert [a[2:] for a in answers[:4]] == [(400, "code_used")] * 4 and answers[4][0] == 400
    assert len(snap["logins"]) == 4 and snap["landing_urls"] == []
    assert [s[-1] for s in snap["portal_sessions"]] == ["replaced", "replaced", None, None]
    assert sorted(d[5] is None for d in snap["devices"]) == [False, True, True]  # withdrawn in s1 and s2
    # every device row bound to its login's address; a tag only where the lease was on the file
    assert sorted((d[6], d[7] is None) for d in snap["devices"]) == [("10.77.0.20", False), ("10.77.0.20", False),
                                                                     ("10.77.0.21", True)]
    assert sorted(c[2] for c in snap["sms_codes"]) == [0, 0, 0, 0, 1]  # the wrong code counted a try
    assert portable == one_statement


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Any:
    url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("migrated_postgres_url"))
    eng = db.make_engine(url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


def test_take_counts_up_to_the_limit_then_refuses_without_counting(engine: sa.Engine) -> None:
    t0 = datetime(2026, 11, 18, tzinfo=UTC)
    with engine.begin() as conn:
        for i in range(3):
            limits.take(conn, b"k", "verify-ip", "10.0.0.1", 3, 3600, t0 + timedelta(seconds=i))
        with pytest.raises(RateLimited) as exc:
            limits.take(conn, b"k", "verify-ip", "10.0.0.1", 3, 3600, t0 + timedelta(seconds=10))
        assert exc.value.retry_after == 3600 - 10 + 1
        limits.take(conn, b"k", "verify-ip", "10.0.0.2", 3, 3600, t0)  # another address has its own count
        assert conn.execute(sa.select(sa.func.count()).select_from(rate_events)).scalar() == 4
        # the oldest event leaves the window: one more is allowed
        limits.take(conn, b"k", "verify-ip", "10.0.0.1", 3, 3600, t0 + timedelta(seconds=3600))
        stored = {r.key for r in conn.execute(sa.select(rate_events.c.key))}
    assert stored == {limits.key_of(b"k", "verify-ip", "10.0.0.1"), limits.key_of(b"k", "verify-ip", "10.0.0.2")}


def test_take_decides_like_check_then_count(engine: sa.Engine) -> None:
    t0 = datetime(2026, 11, 18, tzinfo=UTC)
    with engine.begin() as conn:
        for limit in (1, 2):
            value = f"v{limit}"
            for i in range(limit):
                limits.check_and_count(conn, b"k", [("x", value)], limit, 60, t0 + timedelta(seconds=i))
            with pytest.raises(RateLimited):
                limits.check(conn, b"k", "x", value, limit, 60, t0 + timedelta(seconds=limit))
            with pytest.raises(RateLimited):
                limits.check_and_count(conn, b"k", [("x", value)], limit, 60, t0 + timedelta(seconds=limit))


def test_postgresql_engine_pool_and_timeouts() -> None:
    """A pool for a server process's threads, no pre-ping round trip per checkout, a 5 s connect timeout."""
    engine = db.make_engine("postgresql+psycopg://u@127.0.0.1:1/x")
    seen: dict[str, Any] = {}

    @sa.event.listens_for(engine, "do_connect")
    def capture(_dialect: Any, _rec: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise ConnectionRefusedError("not connecting in a unit test")

    try:
        assert engine.pool.size() >= 8  # gunicorn's 8 threads per worker (and the sweeper) share it
        assert engine.pool._pre_ping is False  # type: ignore[attr-defined]
        assert engine.pool._recycle == 3600  # type: ignore[attr-defined]
        with pytest.raises(ConnectionRefusedError):
            engine.connect()
        assert seen["connect_timeout"] == 5
    finally:
        engine.dispose()
    custom = db.make_engine("postgresql+psycopg://u@127.0.0.1:1/x", connect_args={"connect_timeout": 2},
                            pool_pre_ping=True)
    try:
        assert custom.pool._pre_ping is True  # type: ignore[attr-defined]
    finally:
        custom.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_verifications_per_ip_are_limited_and_a_refused_one_counts_nothing(
        dialect: str, request: pytest.FixtureRequest, sqlite_url: str, var_dir: Path) -> None:
    url = sqlite_url if dialect == "sqlite" else str(request.getfixturevalue("migrated_postgres_url"))
    clock, sms = FakeClock(), ConsoleSms(io.StringIO())
    app = make_app(url, var_dir, MemoryGate(clock), clock, sms, NEIGHBOURS, sms={"verify_per_ip_per_hour": 2})
    phone = Phone(app, "10.77.0.20")
    assert phone.post("/api/login/sms/code", json={"phone": "13812345678"}).status_code == 202
    good = sms.last["+8613812345678"]
    wrong = "000000" if good != "000000" else "111111"
    body = {"phone": "13812345678", "consents": {"terms": True}}
    assert phone.post("/api/login/sms/verify", json={**body, "code": wrong}).json["error"] == "code_wrong"
    assert phone.post("/api/login/sms/verify", json={**body, "code": wrong}).json["error"] == "code_wrong"
    r = phone.post("/api/login/sms/verify", json={**body, "code": good})
    assert r.status_code == 429 and r.json["error"] == "rate_limited" and 0 < int(r.headers["Retry-After"]) <= 3601
    engine = app.extensions["keliu"].engine
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(rate_events)).scalar() == 4  # 2 codes, 2 tries
        assert conn.execute(sa.select(sms_codes.c.tries, sms_codes.c.used_at)).one() == (2, None)
    clock.advance(3601)  # the attempts left the window (and the code expired): a new code logs in
    assert phone.post("/api/login/sms/code", json={"phone": "13812345678"}).status_code == 202
    assert phone.post("/api/login/sms/verify", json={**body, "code": sms.last["+8613812345678"]}).status_code == 200
