"""Migration portal_0005 (accounts and the console) on SQLite and PostgreSQL: users and splash pages made before
it keep their rows (no forced password change for them; empty English texts, terms and logo), and it downgrades."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from keliu import db
from keliu.accounts.users import load_user, set_password

NOW = datetime(2026, 11, 18, tzinfo=UTC)
SPLASH_NEW = {"title_en", "offer_en", "terms_zh", "terms_en", "logo", "logo_type"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Any:
    url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    if request.param == "sqlite":  # the fixture's copy is already migrated: start from an empty file
        url = url.replace("keliu.db", "empty.db")
    eng = db.make_engine(url)
    yield eng
    eng.dispose()


def columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def test_portal_0005_keeps_users_and_splash_pages_and_downgrades(engine: sa.Engine) -> None:
    cfg = db.alembic_config(engine)
    command.upgrade(cfg, "portal_0004")
    assert "must_change_password" not in columns(engine, "admin_users")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO malls (id, name) VALUES ('m1', '')"))
        conn.execute(sa.text("INSERT INTO stores (id, mall_id, name, timezone) VALUES ('s1', 'm1', '', 'UTC')"))
        conn.execute(sa.text("INSERT INTO admin_users (name, password_hash, role, store_id) "
                             "VALUES ('boss', 'x', 'store', 's1')"))
        conn.execute(sa.text("INSERT INTO splash_content (store_id, title, offer, color, updated_at, updated_by) "
                             "VALUES ('s1', '春季', '满100减20', '#0a7d3b', :t, 'boss')"), {"t": NOW})
    db.upgrade(engine)
    assert SPLASH_NEW <= columns(engine, "splash_content")
    user = load_user(engine, "boss")
    assert user is not None and user.must_change is False  # chose their password before: no forced change
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT title, title_en, offer_en, terms_zh, terms_en, logo, logo_type "
                                   "FROM splash_content")).one()
    assert tuple(row) == ("春季", "", "", "", "", None, None)
    set_password(engine, "boss", "a generated one", must_change=True)
    user = load_user(engine, "boss")
    assert user is not None and user.must_change is True
    command.downgrade(cfg, "portal_0004")
    assert "must_change_password" not in columns(engine, "admin_users")
    assert not SPLASH_NEW & columns(engine, "splash_content")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT title FROM splash_content")).scalars().all() == ["春季"]
        assert conn.execute(sa.text("SELECT name FROM admin_users")).scalars().all() == ["boss"]
