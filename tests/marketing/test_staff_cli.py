"""``keliu staff``: settings, a staff phone as a keyed hash, flags (CliRunner, SQLite)."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from keliu import db, keys
from keliu.accounts import users
from keliu.cli import cli
from keliu.tenants import MALLS, STORES
from marketing import staff


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrated_sqlite_url: str) -> sa.Engine:
    url, var = migrated_sqlite_url, tmp_path / "var"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KELIU_DATABASE_URL", url)
    monkeypatch.setenv("KELIU_VAR_DIR", str(var))
    monkeypatch.setattr("keliu.accounts.users.HASH_METHOD", "pbkdf2:sha256:1000")
    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(MALLS).values(id="m1", name="M1"))
        conn.execute(sa.insert(STORES).values(id="s1", mall_id="m1", name="S1", timezone="Asia/Shanghai"))
    users.create_user(engine, "alice", "pw", "staff", store_id="s1")
    return engine


def test_settings(env: sa.Engine) -> None:
    r = CliRunner().invoke(cli, ["staff", "settings", "s1"])
    assert r.exit_code == 0 and "window_days=15\tprotection_days=0" in r.output
    r = CliRunner().invoke(cli, ["staff", "settings", "s1", "--protection-days", "3", "--window-days", "10"])
    assert r.exit_code == 0 and "window_days=10\tprotection_days=3" in r.output
    r = CliRunner().invoke(cli, ["staff", "settings", "s1", "--protection-days", "11"])
    assert r.exit_code == 2 and "protection_days" in r.output
    with env.connect() as conn:
        assert staff.settings_of(conn, "s1").protection_days == 3


def test_phone_is_stored_hashed(env: sa.Engine, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["staff", "phone", "alice", "+8613812345678"])
    assert r.exit_code == 0, r.output
    key = keys.secret_bytes(tmp_path / "var", "token_hmac")
    with env.connect() as conn:
        stored = conn.execute(sa.select(staff.staff_cards.c.phone_hash)).scalar()
    assert stored == staff.phone_hash(key, "+8613812345678") and "13812345678" not in str(stored)
    assert CliRunner().invoke(cli, ["staff", "phone", "alice", "13812345678"]).exit_code == 2
    assert CliRunner().invoke(cli, ["staff", "phone", "bob", "+8613812345678"]).exit_code == 2
    assert CliRunner().invoke(cli, ["staff", "phone", "alice", "--clear"]).exit_code == 0
    with env.connect() as conn:
        assert conn.execute(sa.select(staff.staff_cards.c.phone_hash)).scalar() is None
    assert CliRunner().invoke(cli, ["staff", "flags", "s1"]).exit_code == 0
