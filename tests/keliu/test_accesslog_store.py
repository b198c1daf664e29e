"""The access log against real PostgreSQL and SQLite: sessions recorded, tampering found by ``keliu accesslog
verify`` (exit 1 naming the record), the authorities' query, retention with a moved clock on the Celery task,
and two writers that never fork the chain."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu import db
from keliu.accesslog import signing, store
from keliu.accesslog.chain import Nat
from keliu.accesslog.tables import access_log, accesslog_head

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
PUB = "198.51.100.7"

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("migrated_sqlite_url"))
    return str(request.getfixturevalue("migrated_postgres_url"))


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    e = db.make_engine(url)
    db.upgrade(e)
    yield e
    e.dispose()


def login(conn: Any, at: datetime, session: int, phone: str, mac: str, ip: str, lo: int) -> int:
    return store.append(conn, store.opening_record("login", at, "s1", session, session + 100, phone, None, mac, ip,
                                                   Nat(PUB, lo, lo + 62), "sms"))


def end(conn: Any, at: datetime, session: int, event: str = "logout") -> int:
    return store.ended(conn, event=event, ts=at, session_id=session, store_id="s1", member_id=None, ip="?",
                       started_at=None)


def scenario(engine: Engine) -> None:
    """Two phones on two addresses; the first logs out, the second's session expires; the first comes back."""
    with engine.begin() as conn:
        login(conn, T0, 1, "+8613800000001", "02:00:00:00:00:01", "10.77.0.10", 1654)
        login(conn, T0 + timedelta(minutes=1), 2, "+8613800000002", "02:00:00:00:00:02", "10.77.0.11", 1717)
    with engine.begin() as conn:
        end(conn, T0 + timedelta(hours=1), 1)
    with engine.begin() as conn:
        end(conn, T0 + timedelta(hours=2), 2, "expired")
        # the same address, later, to the other phone
        login(conn, T0 + timedelta(hours=3), 3, "+8613800000002", "02:00:00:00:00:02", "10.77.0.10", 1654)


def run_cli(url: str, var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KELIU_DATABASE_URL": url, "KELIU_VAR_DIR": str(var_dir),
           "KELIU_CONFIG": str(var_dir / "none.toml"), "KELIU_TIMEZONE": "UTC"}
    (var_dir / "none.toml").write_text("")
    return subprocess.run([sys.executable, "-m", "keliu.cli", "accesslog", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_an_ended_session_carries_its_opening_phone_mac_and_block(engine: Engine, var_dir: Path) -> None:
    scenario(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(access_log).order_by(access_log.c.seq)).all()
        assert [(r.event, r.session_id, r.phone, r.mac, r.port_lo) for r in rows] == [
            ("login", 1, "+8613800000001", "02:00:00:00:00:01", 1654),
            ("login", 2, "+8613800000002", "02:00:00:00:00:02", 1717),
            ("logout", 1, "+8613800000001", "02:00:00:00:00:01", 1654),
            ("expired", 2, "+8613800000002", "02:00:00:00:00:02", 1717),
            ("login", 3, "+8613800000002", "02:00:00:00:00:02", 1654)]
        assert rows[2].started_at == T0 and rows[2].ended_at == T0 + timedelta(hours=1)
        assert store.verify(conn, signing.signer(var_dir).public).ok


@pytest.mark.parametrize(("at", "port", "phone"), [
    (T0 + timedelta(minutes=30), 1654, "+8613800000001"),   # the first phone's block, during its session
    (T0 + timedelta(minutes=30), 1716, "+8613800000001"),   # the block's last port
    (T0 + timedelta(minutes=30), 1717, "+8613800000002"),   # the next block is the other address's
    (T0 + timedelta(minutes=90), 1654, None),               # after the logout: nobody
    (T0 - timedelta(minutes=1), 1654, None),                # before anybody
    (T0 + timedelta(hours=2, minutes=30), 1717, None),      # after the expiry
    (T0 + timedelta(hours=4), 1660, "+8613800000002"),      # the address's next holder
    (T0 + timedelta(minutes=30), 1000, None),               # below every block
])
def test_who_used_a_public_address_and_port_at_a_time(engine: Engine, at: datetime, port: int,
                                                      phone: str | None) -> None:
    scenario(engine)
    with engine.connect() as conn:
        found = store.who(conn, PUB, port, at)
        assert (found or {}).get("phone") == phone
        assert store.who(conn, "203.0.113.1", port, at) is None  # another public address: not ours


def test_a_later_login_of_the_same_device_ends_the_earlier_session(engine: Engine) -> None:
    with engine.begin() as conn:
        login(conn, T0, 1, "+8613800000001", "02:00:00:00:00:01", "10.77.0.10", 1654)
        # the phone's new lease: a session at another address replaces the first
        login(conn, T0 + timedelta(minutes=10), 2, "+8613800000001", "02:00:00:00:00:01", "10.77.0.11", 1717)
    with engine.connect() as conn:
        assert store.who(conn, PUB, 1654, T0 + timedelta(minutes=5)) is not None
        assert store.who(conn, PUB, 1654, T0 + timedelta(minutes=20)) is None


TAMPER = {
    "change": (lambda conn: conn.execute(sa.update(access_log).where(access_log.c.seq == 2)
                                         .values(phone="+8613999999999")), "record 2: hash mismatch"),
    "delete": (lambda conn: conn.execute(sa.delete(access_log).where(access_log.c.seq == 3)),
               "record 3: missing"),
    "reorder": (lambda conn: [conn.execute(sa.update(access_log).where(access_log.c.seq == a).values(seq=b))
                              for a, b in ((2, -1), (3, 2), (-1, 3))], "record 2: previous-hash mismatch"),
    "truncate": (lambda conn: conn.execute(sa.delete(access_log).where(access_log.c.seq == 5)),
                 "the chain head says 5 records, the table ends at 4"),
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_verify_exits_1_naming_the_first_bad_record(engine: Engine, url: str, var_dir: Path, how: str) -> None:
    scenario(engine)
    ok = run_cli(url, var_dir, "verify")
    assert ok.returncode == 0 and "ok: 5 records 1–5" in ok.stdout, ok.stderr
    tamper, message = TAMPER[how]
    with engine.begin() as conn:
        tamper(conn)
    bad = run_cli(url, var_dir, "verify")
    assert bad.returncode == 1 and message in bad.stderr and bad.stderr.startswith("keliu: chain broken at record")


def test_a_rewritten_chain_fails_its_signed_anchor(engine: Engine, var_dir: Path) -> None:
    """Rehashing every record after a change (the links are unkeyed) is caught by the anchor's signature."""
    from keliu.accesslog import chain

    signer = signing.signer(var_dir)
    scenario(engine)
    with engine.begin() as conn:
        store.anchor(conn, signer, T0 + timedelta(days=1))
    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(access_log).order_by(access_log.c.seq))]
        rows[0]["phone"] = "+8613999999999"
        prev = chain.GENESIS
        for r in rows:
            r["prev_hash"], r["hash"] = prev, chain.link(prev, r["seq"], r["session_id"], r["member_id"],
                                                         chain.body(r))
            prev = r["hash"]
            conn.execute(sa.update(access_log).where(access_log.c.seq == r["seq"]).values(**r))
        conn.execute(sa.update(accesslog_head).values(prev_hash=rows[-1]["prev_hash"], hash=prev))
    with engine.connect() as conn:
        report = store.verify(conn, signer.public)
    assert report.bad is not None and report.bad.seq == 6 and "anchor" in str(report.bad)


def test_query_and_export_answer_and_are_themselves_logged(engine: Engine, url: str, var_dir: Path,
                                                           tmp_path: Path) -> None:
    scenario(engine)
    q = run_cli(url, var_dir, "query", "--public-ip", PUB, "--port", "1700", "--at", "2026-11-18T10:30:00+00:00",
                "--requester", "派出所 case 2026-117")
    assert q.returncode == 0, q.stderr
    (rec,) = [json.loads(line) for line in q.stdout.splitlines()]
    assert (rec["phone"], rec["mac"], rec["ip"]) == ("+8613800000001", "02:00:00:00:00:01", "10.77.0.10")
    by_phone = run_cli(url, var_dir, "query", "--phone", "+8613800000002", "--requester", "case 2026-118")
    assert [json.loads(line)["session_id"] for line in by_phone.stdout.splitlines()] == [2, 2, 3]
    out = tmp_path / "export.csv"
    e = run_cli(url, var_dir, "export", "--from", "2026-11-18T00:00:00", "--to", "2026-11-19T00:00:00",
                "--format", "csv", "-o", str(out), "--requester", "case 2026-119")
    assert e.returncode == 0 and "exported 5 records" in e.stderr
    assert len(out.read_text().splitlines()) == 6
    j = run_cli(url, var_dir, "export", "--from", "2026-11-18T10:59:00+00:00", "--to", "2026-11-18T11:01:00Z",
                "--format", "json", "--requester", "case 2026-120")
    assert [r["event"] for r in json.loads(j.stdout)] == ["logout"]
    with engine.connect() as conn:
        uses = conn.execute(sa.select(access_log.c.event, access_log.c.detail)
                            .where(access_log.c.event.in_(["query", "export"])).order_by(access_log.c.seq)).all()
        assert [(u.event, json.loads(u.detail)["records"]) for u in uses] == [
            ("query", 1), ("query", 3), ("export", 5), ("export", 1)]
        assert json.loads(uses[0].detail)["requester"] == "派出所 case 2026-117"
        assert store.verify(conn, signing.signer(var_dir).public).ok


def test_retention_purges_on_the_beat_task_with_a_moved_clock(engine: Engine, url: str, var_dir: Path) -> None:
    from analytics.celery_app import make_celery
    from keliu import config

    cfg = config.build({"database_url": url, "var_dir": str(var_dir), "accesslog": {"retention_days": 60}})
    app = make_celery(cfg)
    try:
        _retention(app, engine, var_dir)
    finally:
        from analytics import tasks

        tasks._ENGINES.pop(url).dispose()


def _retention(app: Any, engine: Engine, var_dir: Path) -> None:
    scenario(engine)  # day 0
    with engine.begin() as conn:
        login(conn, T0 + timedelta(days=40), 4, "+8613800000004", "02:00:00:00:00:04", "10.77.0.12", 1780)
    purge = app.tasks["analytics.accesslog_purge"]
    # day 59: nothing is old enough
    assert purge.apply(args=((T0 + timedelta(days=59)).timestamp(),)).get() == 0
    # day 61: the first day's five records go; the purge record names where the chain begins now
    assert purge.apply(args=((T0 + timedelta(days=61)).timestamp(),)).get() == 5
    with engine.connect() as conn:
        rows = conn.execute(sa.select(access_log.c.seq, access_log.c.event).order_by(access_log.c.seq)).all()
        assert [(r.seq, r.event) for r in rows] == [(6, "login"), (7, "purge")]
        report = store.verify(conn, signing.signer(var_dir).public)
        assert report.ok and report.first_seq == 6 and report.records == 2
    app.tasks["analytics.accesslog_anchor"].apply(args=((T0 + timedelta(days=62)).timestamp(),)).get()
    # day 130: the rest (the day-40 login, the first purge record, the anchor) go; the chain starts at the second
    # purge record
    assert purge.apply(args=((T0 + timedelta(days=130)).timestamp(),)).get() == 3
    with engine.connect() as conn:
        assert store.verify(conn, signing.signer(var_dir).public).ok
    # a forged purge record (another key) is refused
    other = signing.Signer(__import__("cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"])
                           .Ed25519PrivateKey.generate())
    with engine.begin() as conn:
        store.purge(conn, other, T0 + timedelta(days=400), 60)
    with engine.connect() as conn:
        report = store.verify(conn, signing.signer(var_dir).public)
        assert report.bad is not None and "purge record's signature" in str(report.bad)


def test_retention_below_the_laws_60_days_is_a_config_error() -> None:
    from keliu import config
    from keliu.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        config.build({"accesslog": {"retention_days": 59}})
    assert exc.value.key == "accesslog.retention_days"
    assert config.build({}).accesslog.retention_days == 180


def test_two_writers_at_once_never_fork_the_chain(engine: Engine, var_dir: Path) -> None:
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(60):
                with engine.begin() as conn:
                    login(conn, T0 + timedelta(seconds=i), k * 1000 + i, f"+86138000{k:02}{i:03}",
                          f"02:00:00:00:{k:02x}:{i:02x}", f"10.77.{k}.{i + 2}", 1024 + i * 63)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        report = store.verify(conn, signing.signer(var_dir).public)
        assert report.ok and report.records == 180


@pytest.mark.parametrize("how", [*sorted(TAMPER), "none"])
def test_postgresql_walking_the_chain_finds_what_python_finds(migrated_postgres_url: str, var_dir: Path,
                                                             how: str) -> None:
    """PostgreSQL recomputes the links itself (a window over the chain); Python, independently, must agree."""
    engine = db.make_engine(migrated_postgres_url)
    try:
        db.upgrade(engine)
        scenario(engine)
        with engine.begin() as conn:
            store.log_use(conn, "query", T0 + timedelta(days=1), {"requester": "派出所", "records": 1})
            store.anchor(conn, signing.signer(var_dir), T0 + timedelta(days=1))
        if how != "none":
            with engine.begin() as conn:
                TAMPER[how][0](conn)
        public = signing.signer(var_dir).public
        with engine.connect() as conn:
            in_db, in_python = store.verify(conn, public, in_database=True), store.verify(conn, public)
        assert in_db == in_python
        assert in_db.ok == (how == "none")
    finally:
        engine.dispose()
