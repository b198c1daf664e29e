"""A dead database: the shopper gets a clear 503 with Retry-After, nothing is stored or opened, probes stay captive,
and the next request after the database is back works (the pool reconnects by itself).

The database "dies" for real: PostgreSQL terminates every backend of the portal's database, so the pooled
connections the app holds are dead when it next uses them.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from keliu.gate import MemoryGate
from portal.edges.sms_backends import ConsoleSms
from portal.store.models import members
from tests.conftest import POSTGRES_URL
from tests.portal.conftest import FakeClock, Phone, make_app
from tests.portal.test_headers import assert_secured

pytestmark = pytest.mark.integration


def kill_backends(url: str) -> int:
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": name}).all())
    finally:
        admin.dispose()


def test_dead_database_is_a_clear_503_that_opens_nothing(migrated_postgres_url: str, var_dir: Path, gate: MemoryGate,
                                                         clock: FakeClock, sms: ConsoleSms,
                                                         neighbours: dict[str, str]) -> None:
    app = make_app(migrated_postgres_url, var_dir, gate, clock, sms, neighbours)
    phone = Phone(app, "10.77.0.20")
    assert phone.post("/api/login/sms/code", json={"phone": "13812345678"}).status_code == 202
    code = sms.last["+8613812345678"]
    assert kill_backends(migrated_postgres_url) >= 1

    r = phone.post("/api/login/sms/verify", json={"phone": "13812345678", "code": code,
                                                   "consents": {"terms": True}})
    assert r.status_code == 503 and r.json["error"] == "unavailable" and r.headers["Retry-After"] == "5"
    assert gate.log == []  # fail closed: no internet

    # each kill below hits a pooled connection the request before had opened again
    assert phone.get("/").status_code == 200
    assert kill_backends(migrated_postgres_url) >= 1
    page = phone.get("/")
    assert page.status_code == 503 and 'id="error"' in page.get_data(as_text=True)
    assert page.headers["Retry-After"] == "5"
    # it comes back by itself without script (issue 12 item 15: the CSP runs no inline script), and is framed by no one
    assert '<meta http-equiv="refresh" content="5">' in page.get_data(as_text=True)
    assert_secured(page, "503 page")
    assert phone.get("/").status_code == 200
    assert kill_backends(migrated_postgres_url) >= 1
    probe = phone.get("/generate_204", host="connectivitycheck.gstatic.com")
    assert probe.status_code == 302 and probe.headers["Location"] == "http://10.77.0.1:8080/"

    # back: the code was not used up by the failed attempt, and the login goes through
    r = phone.post("/api/login/sms/verify", json={"phone": "13812345678", "code": code,
                                                   "consents": {"terms": True}})
    assert r.status_code == 200 and r.json["online"] is True, r.get_data(as_text=True)
    assert len(gate.log) == 1
    with app.extensions["keliu"].engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(members)).scalar() == 1
