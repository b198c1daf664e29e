"""The portal's session changes in the access log (MPS Order 82): login, extension, kick, logout and expiry, each
with the phone, the MAC and the port block, written in the change's own transaction; the chain verifies."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from keliu.accesslog import signing, store
from keliu.accesslog.tables import access_log
from keliu.gate import MemoryGate
from portal.edges.sms_backends import ConsoleSms
from portal.store import access
from portal.store.models import portal_sessions
from tests.portal.conftest import AuthActions, FakeClock, Phone, csrf_of


def test_every_session_change_is_recorded_with_phone_mac_and_block(app: Flask, client: Any, auth: AuthActions,
                                                                   sms: ConsoleSms, gate: MemoryGate,
                                                                   clock: FakeClock, var_dir: Any) -> None:
    svc = app.extensions["keliu"]
    first, second = Phone(app, "10.77.0.20"), Phone(app, "10.77.0.21")
    first.login(sms)
    second.login(sms, number="13700000002")
    auth.login()
    with svc.engine.connect() as conn:
        sid = conn.execute(sa.select(portal_sessions.c.id).where(portal_sessions.c.ip == "10.77.0.20")).scalar()
    token = csrf_of(client.get("/admin").get_data(as_text=True))
    clock.advance(600)
    assert client.post(f"/admin/sessions/{sid}/extend", data={"csrf_token": token, "minutes": "60"}).status_code == 303
    assert client.post(f"/admin/sessions/{sid}/kick", data={"csrf_token": token}).status_code == 303
    # the second phone's session runs out; the sweep ends it
    clock.advance(86400)
    access.sweep(svc, svc.now())
    # the first logs in again and out by itself
    first.login(sms)
    r = first.post("/api/session/logout", content_type="application/json")
    assert r.json is not None and r.json["ended"] is True, r.get_data(as_text=True)
    with svc.engine.connect() as conn:
        rows = conn.execute(sa.select(access_log).order_by(access_log.c.seq)).all()
        got = [(r.event, r.phone, r.mac, r.ip, r.port_lo, r.port_hi) for r in rows]
        a = ("+8613812345678", "3c:22:fb:00:00:01", "10.77.0.20", 2284, 2346)
        b = ("+8613700000002", "3c:22:fb:00:00:02", "10.77.0.21", 2347, 2409)
        assert got == [("login", *a), ("login", *b), ("extend", *a), ("kick", *a), ("expired", *b), ("login", *a),
                       ("logout", *a)]
        assert [r.session_id for r in rows][:5] == [sid, sid + 1, sid, sid, sid + 1]
        kick = rows[3]
        assert kick.started_at is not None and kick.ended_at == kick.ts
        assert store.verify(conn, signing.signer(var_dir).public).ok
