"""Migration portal_0002 (the devices' (MAC . IP) binding) on SQLite and PostgreSQL: a device remembered before it
keeps its row but no binding, so its next visit needs one SMS (fail closed); and it downgrades."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from keliu import db
from portal.core import binding
from portal.store import members

NOW = datetime(2026, 11, 18, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request: pytest.FixtureRequest, sqlite_url: str) -> Any:
    url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    if request.param == "sqlite":  # the fixture's copy is already migrated: start from an empty file
        url = url.replace("keliu.db", "empty.db")
    eng = db.make_engine(url)
    yield eng
    eng.dispose()


def columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns("devices")}


def test_portal_0002_adds_the_binding_and_downgrades(engine: sa.Engine) -> None:
    cfg = db.alembic_config(engine)
    command.upgrade(cfg, "portal_0001")
    assert not {"bound_ip", "lease_tag"} & columns(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO malls (id, name) VALUES ('m1', '')"))
        conn.execute(sa.text("INSERT INTO stores (id, mall_id, name, timezone) VALUES ('s1', 'm1', '', 'UTC')"))
        conn.execute(sa.text("INSERT INTO devices (device_id, store_id, first_seen, last_seen, reauth_until) "
                             "VALUES ('d1', 's1', :t, :t, :until)"), {"t": NOW, "until": NOW + timedelta(days=7)})
    db.upgrade(engine)
    assert {"bound_ip", "lease_tag"} <= columns(engine)
    with engine.connect() as conn:
        assert members.bound_of(conn, "d1", "s1") is None  # remembered before: not bound
    assert binding.reauth_refusal(None, "3c:22:fb:00:00:01", "10.77.0.20", binding.NO_LEASE_FILE, b"k",
                                  NOW.timestamp()) == "not_bound"
    with engine.begin() as conn:
        members.touch_device(conn, device_id="d1", member_id=None, store_id="s1", now=NOW,
                             bound=binding.Bound("10.77.0.20", "0123456789abcdef"))
    with engine.connect() as conn:
        assert members.bound_of(conn, "d1", "s1") == binding.Bound("10.77.0.20", "0123456789abcdef")
    command.downgrade(cfg, "portal_0001")
    assert not {"bound_ip", "lease_tag"} & columns(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT device_id FROM devices")).scalars().all() == ["d1"]
