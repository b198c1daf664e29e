"""Admin and auth: roles, login_required, CSRF, rate-limited login, online clients, kick, extend, splash content."""
from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify

from keliu.gate import AllowClient, MemoryGate, RevokeClient
from portal import auth as pauth
from portal.auth import AdminUser, login_required
from portal.edges.sms_backends import ConsoleSms
from portal.store.models import portal_sessions
from tests.portal.conftest import T0, AuthActions, FakeClock, Phone, csrf_of, make_app

TENANTS = {"malls": [{"id": "m1", "name": "Mall 1"}, {"id": "m2", "name": "Mall 2"}],
           "stores": [{"id": "s1", "mall": "m1"}, {"id": "s2", "mall": "m1"}, {"id": "s3", "mall": "m2"}]}


@pytest.mark.parametrize(("user", "store", "mall", "ok"), [
    (AdminUser("a", "admin"), "s3", "m2", True),
    (AdminUser("m", "mall", mall_id="m1"), "s2", "m1", True),
    (AdminUser("m", "mall", mall_id="m1"), "s3", "m2", False),
    (AdminUser("s", "store", mall_id="m1", store_id="s1"), "s1", "m1", True),
    (AdminUser("s", "store", mall_id="m1", store_id="s1"), "s2", "m1", False),
])
def test_can_see_store(user: AdminUser, store: str, mall: str, ok: bool) -> None:
    assert user.can_see_store(store, mall) is ok


def test_can_see_mall() -> None:
    assert AdminUser("a", "admin").can_see_mall("m2")
    assert AdminUser("m", "mall", mall_id="m1").can_see_mall("m1")
    assert not AdminUser("m", "mall", mall_id="m1").can_see_mall("m2")
    assert not AdminUser("s", "store", mall_id="m1", store_id="s1").can_see_mall("m1")


def test_admin_pages_need_a_login(client: Any) -> None:
    r = client.get("/admin")
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login?next=")


def test_api_views_get_401_json(app: Flask) -> None:
    @login_required
    def secret() -> Any:
        return jsonify(ok=True)

    app.add_url_rule("/api/v1/secret", view_func=secret)
    r = app.test_client().get("/api/v1/secret")
    assert r.status_code == 401 and r.json["error"] == "login_required"


def test_login_logout_and_cookie_flags(client: Any, auth: AuthActions) -> None:
    r = auth.login()
    assert r.status_code == 302 and r.headers["Location"] == "/admin"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/admin").status_code == 200
    auth.logout()
    assert client.get("/admin").status_code == 302


def test_secure_cookie_when_the_portal_is_https(db_url: str, var_dir: Any, gate: MemoryGate, clock: FakeClock,
                                                sms: ConsoleSms, neighbours: dict[str, str]) -> None:
    app = make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"public_url": "https://portal.example"})
    r = AuthActions(app.test_client()).login()
    assert "Secure" in r.headers["Set-Cookie"]


def test_login_next_is_local_only(client: Any, auth: AuthActions, app: Flask) -> None:
    from keliu import keys

    token = csrf_of(client.get("/admin/login").get_data(as_text=True))
    r = client.post("/admin/login?next=//evil.example/x", data={
        "csrf_token": token, "name": "admin", "password": keys.admin_password(app.extensions["keliu"].cfg.var_dir)})
    assert r.headers["Location"] == "/admin"


def test_wrong_password_then_rate_limited(client: Any, auth: AuthActions) -> None:
    for _ in range(10):
        assert auth.login(password="wrong").status_code == 401
    r = auth.login()  # even the right password: the IP is blocked for a while
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_admin_forms_need_csrf(client: Any, auth: AuthActions, app: Flask) -> None:
    auth.login()
    assert client.post("/admin/logout").status_code == 400
    assert client.post("/admin/sessions/1/kick").status_code == 400


def test_online_clients_kick_and_extend(app: Flask, client: Any, auth: AuthActions, sms: ConsoleSms,
                                       gate: MemoryGate, clock: FakeClock) -> None:
    phone = Phone(app, "10.77.0.20")
    phone.login(sms)
    auth.login()
    html = client.get("/admin").get_data(as_text=True)
    assert "138****5678" in html and "13812345678" not in html
    device = app.extensions["keliu"].client("10.77.0.20").device_id
    assert device in html
    with app.extensions["keliu"].engine.connect() as conn:
        sid = conn.execute(sa.select(portal_sessions.c.id)).scalar()
    token = csrf_of(html)
    clock.advance(600)
    r = client.post(f"/admin/sessions/{sid}/extend", data={"csrf_token": token, "minutes": "60"})
    assert r.status_code == 303
    assert gate.log[-1] == AllowClient("3c:22:fb:00:00:01", "10.77.0.20", T0 + 600 + 86400)  # capped: one session from now
    r = client.post(f"/admin/sessions/{sid}/kick", data={"csrf_token": token})
    assert r.status_code == 303 and gate.log[-1] == RevokeClient("3c:22:fb:00:00:01")
    assert phone.get("/generate_204", host="connectivitycheck.gstatic.com").status_code == 302
    assert "nobody online" in client.get("/admin").get_data(as_text=True)


def test_extend_adds_time(app: Flask, client: Any, auth: AuthActions, sms: ConsoleSms, gate: MemoryGate,
                          clock: FakeClock, db_url: str, var_dir: Any, neighbours: dict[str, str]) -> None:
    short = make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"session_minutes": 120})
    Phone(short, "10.77.0.20").login(sms)
    c = short.test_client()
    AuthActions(c).login()
    with short.extensions["keliu"].engine.connect() as conn:
        sid = conn.execute(sa.select(portal_sessions.c.id)).scalar()
    clock.advance(3600)
    c.post(f"/admin/sessions/{sid}/extend", data={"csrf_token": csrf_of(c.get("/admin").get_data(as_text=True)),
                                                 "minutes": "30"})
    assert gate.log[-1].until == T0 + 7200 + 1800  # type: ignore[union-attr]


def roles_app(db_url: str, var_dir: Any, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
              neighbours: dict[str, str], store: str) -> Flask:
    return make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"store": store}, **TENANTS)


def test_roles_see_only_their_stores(db_url: str, var_dir: Any, gate: MemoryGate, clock: FakeClock,
                                     sms: ConsoleSms, neighbours: dict[str, str]) -> None:
    apps = {s: roles_app(db_url, var_dir, gate, clock, sms, neighbours, s) for s in ("s1", "s2", "s3")}
    for i, s in enumerate(("s1", "s2", "s3")):
        neighbours[f"10.77.1.{i}"] = f"3c:22:fb:00:01:0{i}"
        Phone(apps[s], f"10.77.1.{i}").login(sms, f"1381234560{i}")
    engine = apps["s1"].extensions["keliu"].engine
    pauth.create_user(engine, "boss1", "pw-mall-1", "mall", mall_id="m1")
    pauth.create_user(engine, "shop2", "pw-store-2", "store", mall_id="m1", store_id="s2")
    seen = {}
    for name, pw in (("boss1", "pw-mall-1"), ("shop2", "pw-store-2")):
        c = apps["s1"].test_client()
        assert AuthActions(c).login(name, pw).status_code == 302
        html = c.get("/admin").get_data(as_text=True)
        seen[name] = {s for s in ("s1", "s2", "s3") if f"<td>{s}</td>" in html}
        with engine.connect() as conn:
            s3 = conn.execute(sa.select(portal_sessions.c.id).where(portal_sessions.c.store_id == "s3")).scalar()
        token = csrf_of(html)
        assert c.post(f"/admin/sessions/{s3}/kick", data={"csrf_token": token}).status_code == 403
        assert c.get("/admin/splash/s3").status_code == 403
    assert seen == {"boss1": {"s1", "s2"}, "shop2": {"s2"}}


def test_store_manager_edits_the_splash(db_url: str, var_dir: Any, gate: MemoryGate, clock: FakeClock,
                                        sms: ConsoleSms, neighbours: dict[str, str]) -> None:
    app = roles_app(db_url, var_dir, gate, clock, sms, neighbours, "s1")
    pauth.create_user(app.extensions["keliu"].engine, "shop1", "pw", "store", mall_id="m1", store_id="s1")
    c = app.test_client()
    AuthActions(c).login("shop1", "pw")
    token = csrf_of(c.get("/admin/splash/s1").get_data(as_text=True))
    bad = c.post("/admin/splash/s1", data={"csrf_token": token, "title": "x", "offer": "", "color": "red"})
    assert bad.status_code == 400
    r = c.post("/admin/splash/s1", data={"csrf_token": token, "title": "春季新品", "offer": "<b>连网领券</b> 满100减20",
                                        "color": "#0a7d3b"})
    assert r.status_code == 303
    html = Phone(app, "10.77.0.20").get("/").get_data(as_text=True)
    assert "春季新品" in html and "&lt;b&gt;连网领券&lt;/b&gt; 满100减20" in html and "#0a7d3b" in html
