"""A real SMS login through the portal of a fleet's router that connects with its own role (row level security,
keliu.fleet): the central host migrated the schema; router A's portal logs in a new shopper and a member of store B,
sees only its store's sessions; its store manager signs in on the router and cannot even find a session of B."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu.accounts import users
from keliu.fleet import roles
from keliu.gate import AllowClient, MemoryGate
from portal.app import create_app, start_up
from portal.core import phone
from portal.edges.sms_backends import ConsoleSms
from portal.store.models import logins, members, portal_sessions
from tests.portal.conftest import FakeClock, Phone, csrf_of, make_app


@pytest.fixture
def stores() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]  # roles are per server: names of their own
    return f"a{tag}", f"b{tag}"


@pytest.fixture
def central(migrated_postgres_url: str, var_dir: Path, clock: FakeClock, sms: ConsoleSms, neighbours: dict[str, str],
            stores: tuple[str, str]) -> Iterator[Flask]:
    a, b = stores
    tenants = {"malls": [{"id": "m1", "name": "Mall"}],
               "stores": [{"id": a, "mall": "m1"}, {"id": b, "mall": "m1"}]}
    # store B's portal runs as the owner (as a single database's would): schema, tenants, admin
    app = make_app(migrated_postgres_url, var_dir, MemoryGate(clock), clock, sms, neighbours, portal={"store": b},
                   **tenants)
    engine = app.extensions["keliu"].engine
    try:
        yield app
    finally:
        roles.remove_router(engine, a)


@pytest.mark.integration
def test_a_router_logs_in_through_its_own_role(central: Flask, migrated_postgres_url: str, tmp_path: Path,
                                                clock: FakeClock, sms: ConsoleSms, neighbours: dict[str, str],
                                                stores: tuple[str, str]) -> None:
    a, b = stores
    owner = central.extensions["keliu"].engine
    assert Phone(central, "10.77.0.21").login(sms, number="13900000002").status_code in (200, 302, 303)
    users.create_user(owner, "mgr-a", "a-long-password-1", "store", store_id=a)
    role, _password = roles.add_router(owner, a)
    # router A: its own var dir and gate; the test server trusts 127.0.0.1, so the role name is what matters
    router_url = sa.engine.make_url(migrated_postgres_url).set(username=role).render_as_string(False)
    var_a = tmp_path / "router-a"
    var_a.mkdir()
    gate = MemoryGate(clock)
    router = create_app({"KELIU": {"database_url": router_url, "var_dir": str(var_a),
                                   "portal": {"public_url": "http://10.77.0.1:8080", "store": a,
                                              "manage_schema": False},
                                   "malls": [{"id": "m1", "name": "Mall"}],
                                   "stores": [{"id": a, "mall": "m1"}, {"id": b, "mall": "m1"}]},
                         "TESTING": True, "GATE": gate, "CLOCK": clock, "SMS": sms, "NEIGHBOURS": neighbours.get})
    try:
        start_up(router)  # as keliu portal does: here only the Gate reconciled with its store's sessions
        new = Phone(router, "10.77.0.20").login(sms, number="13812345678")
        crossed = Phone(router, "10.77.0.21").login(sms, number="13900000002")
        for r in (new, crossed):
            assert r.status_code in (200, 302, 303), r.get_data(as_text=True)[:500]
        allowed = [c for c in gate.log if isinstance(c, AllowClient)]
        assert {c.mac for c in allowed} == {neighbours["10.77.0.20"], neighbours["10.77.0.21"]}
        engine: Any = router.extensions["keliu"].engine
        with engine.connect() as conn:
            assert set(conn.execute(sa.select(portal_sessions.c.store_id)).scalars()) == {a}
            assert sorted(conn.execute(sa.select(members.c.phone_e164)).scalars()) == ["+8613812345678",
                                                                                     "+8613900000002"]
        # its store manager signs in to the router's console and sees its store's online clients only
        manager = router.test_client()
        token = csrf_of(manager.get("/admin/login").get_data(as_text=True))
        r = manager.post("/admin/login", data={"csrf_token": token, "name": "mgr-a", "password": "a-long-password-1"})
        assert r.status_code in (302, 303), r.get_data(as_text=True)[:300]
        page = manager.get("/admin")
        assert page.status_code == 200, page.get_data(as_text=True)[:300]
        html = page.get_data(as_text=True)
        assert phone.mask("+8613812345678") in html and phone.mask("+8613900000002") in html
        # store B's session does not exist for it: kicking it is a 404, and B's client stays online
        with owner.connect() as conn:
            b_session = conn.execute(sa.select(portal_sessions.c.id).where(portal_sessions.c.store_id == b)
                                     ).scalar_one()
        token = csrf_of(html)
        assert manager.post(f"/admin/sessions/{b_session}/kick", data={"csrf_token": token}).status_code == 404
        engine.dispose()
    finally:
        router.extensions["keliu"].engine.dispose()
    # the central host sees both stores; B's member is one member with logins in both
    with owner.connect() as conn:
        by_store = conn.execute(sa.select(logins.c.store_id, sa.func.count()).group_by(logins.c.store_id)).all()
        assert dict(by_store) == {a: 2, b: 1}
        assert conn.execute(sa.select(portal_sessions.c.ended_at).where(portal_sessions.c.store_id == b)
                            ).scalar_one() is None
        assert conn.execute(sa.select(sa.func.count()).select_from(members)).scalar_one() == 2
