"""The member's rights pages (``/member/data``, the member in ``session["member_id"]``), the members in the admin by
tenancy, with every view recorded in the audit trail, and ``keliu member export|correct|delete``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask

from keliu import audit
from keliu.accounts import users
from keliu.gate import MemoryGate
from portal.edges.sms_backends import ConsoleSms
from portal.store import rights
from tests.portal.conftest import AuthActions, FakeClock, Phone, csrf_of, make_app

TENANTS = {"malls": [{"id": "m1"}, {"id": "m2"}],
           "stores": [{"id": "s1", "mall": "m1"}, {"id": "s2", "mall": "m1"}, {"id": "s3", "mall": "m2"}]}


def member_of(app: Flask, e164: str) -> int:
    with app.extensions["keliu"].engine.connect() as conn:
        mid = rights.find(conn, e164)
    assert mid is not None
    return mid


def as_member(app: Flask, member_id: int) -> Any:
    client = app.test_client()
    with client.session_transaction() as s:
        s["member_id"] = member_id
    return client


def test_member_page_needs_the_member_session(client: Any) -> None:
    assert client.get("/member/data").status_code == 401
    with client.session_transaction() as s:
        s["member_id"] = 999
    assert client.get("/member/data").status_code == 401  # no such member (deleted): no page


def test_member_sees_downloads_and_withdraws(app: Flask, phone: Phone, sms: ConsoleSms, gate: MemoryGate) -> None:
    phone.login(sms, marketing=True, analytics=True, reauth=True)
    mid = member_of(app, "+8613812345678")
    client = as_member(app, mid)
    page = client.get("/member/data").get_data(as_text=True)
    assert "我的数据" in page and "138****5678" in page and 'id="withdraw-analytics"' in page
    assert "My data" in client.get("/member/data?lang=en").get_data(as_text=True)
    r = client.get("/member/data/export.json")
    assert r.headers["Content-Disposition"].startswith("attachment") and r.headers["Cache-Control"] == "no-store"
    data = json.loads(r.get_data(as_text=True))
    assert data["member"]["phone"] == "+8613812345678" and len(data["logins"]) == 1
    assert {c["kind"] for c in data["consents"]} == {"terms", "marketing", "analytics", "reauth"}
    assert data["consents"][0]["version"].endswith("2026-11") and data["devices"][0]["device_id"]
    readable = client.get("/member/data/all").get_data(as_text=True)
    assert "登录记录" in readable and data["devices"][0]["device_id"] in readable
    token = csrf_of(page)
    reg = data["sensor_registry"][0]["registry_id"]
    svc = app.extensions["keliu"]
    from sensor import consent

    assert consent.kind_of(svc.engine, reg) == "member"
    from sensor.store import sightings

    with svc.engine.begin() as conn:
        conn.execute(sa.insert(sightings), [{"sid": f"s{i}", "ts": 1.0e9, "store": "demo-store", "sensor": "x",
                                              "device": dev, "randomized": False}
                                             for i, dev in enumerate((reg, "0123456789abcdef"))])
    r = client.post("/member/data/withdraw", data={"csrf_token": token, "kind": "analytics"})
    assert r.status_code == 200 and 'id="withdraw-analytics"' not in r.get_data(as_text=True)
    assert consent.kind_of(svc.engine, reg) is None
    with svc.engine.connect() as conn:  # the visits linked under the consent go with it; anonymous ones stay
        assert conn.execute(sa.text("SELECT device FROM sightings")).scalars().all() == ["0123456789abcdef"]
    client.post("/member/data/withdraw", data={"csrf_token": token, "kind": "reauth"})
    with svc.engine.connect() as conn:
        assert rights.export(conn, mid, [], svc.now())["consents_now"] == {
            "terms": True, "marketing": True, "analytics": False, "reauth": False}
        assert conn.execute(sa.text("SELECT reauth_until FROM devices")).scalar() is None
    assert client.post("/member/data/withdraw", data={"csrf_token": token, "kind": "terms"}).status_code == 400


def test_phone_change_needs_the_new_number_verified(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    phone.login(sms)
    Phone(app, "10.77.0.21").login(sms, number="13900139000")
    mid = member_of(app, "+8613812345678")
    client = as_member(app, mid)
    token = csrf_of(client.get("/member/data/phone").get_data(as_text=True))
    r = client.post("/member/data/phone", data={"csrf_token": token, "phone": "13900139000", "action": "code"})
    assert r.status_code == 400 and "另一位会员" in r.get_data(as_text=True)  # another member's number
    r = client.post("/member/data/phone", data={"csrf_token": token, "phone": "13700137000", "action": "code"})
    assert r.status_code == 200 and 'id="code"' in r.get_data(as_text=True)
    code = sms.last["+8613700137000"]
    wrong = "000000" if code != "000000" else "111111"
    verify = {"csrf_token": token, "phone": "13700137000", "action": "verify"}
    r = client.post("/member/data/phone", data=verify | {"code": wrong})
    assert r.status_code == 400 and 'id="code"' in r.get_data(as_text=True)
    assert member_of(app, "+8613812345678") == mid  # unchanged
    with client.session_transaction() as s:
        assert "13700137000" not in json.dumps(dict(s))  # the number stays in the form, not in the cookie
    r = client.post("/member/data/phone", data=verify | {"code": code})
    assert r.status_code == 303 and r.headers["Location"] == "/member/data?done=phone&lang=zh-CN"
    assert member_of(app, "+8613700137000") == mid


@pytest.fixture
def tenant_app(db_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
               neighbours: dict[str, str]) -> Flask:
    app = make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"store": "s1"}, **TENANTS)
    engine = app.extensions["keliu"].engine
    users.create_user(engine, "m1op", "pw-m1", "mall", mall_id="m1")
    users.create_user(engine, "m2op", "pw-m2", "mall", mall_id="m2")
    users.create_user(engine, "s2mgr", "pw-s2", "store", mall_id="m1", store_id="s2")
    return app


def test_admin_members_by_tenancy_and_every_view_audited(tenant_app: Flask, sms: ConsoleSms) -> None:
    Phone(tenant_app, "10.77.0.20").login(sms)  # first seen in s1 (mall m1)
    mid = member_of(tenant_app, "+8613812345678")

    def login(name: str, pw: str) -> Any:
        c = tenant_app.test_client()
        AuthActions(c).login(name, pw)
        return c

    m1, m2, s2 = login("m1op", "pw-m1"), login("m2op", "pw-m2"), login("s2mgr", "pw-s2")
    page = m1.get("/admin/members").get_data(as_text=True)
    assert "138****5678" in page and "13812345678" not in page
    assert f'href="/admin/members/{mid}"' not in m2.get("/admin/members").get_data(as_text=True)
    assert m2.get(f"/admin/members/{mid}").status_code == 404
    assert s2.get(f"/admin/members/{mid}").status_code == 404  # first seen in s1, not s2
    assert m1.get(f"/admin/members/{mid}").status_code == 200
    assert m1.get(f"/admin/members/{mid}/export.json").status_code == 200
    # a mall operator may not overwrite a number (an admin may, on record); nor see another mall's trail
    token = csrf_of(m1.get(f"/admin/members/{mid}").get_data(as_text=True))
    assert m1.post(f"/admin/members/{mid}/phone", data={"csrf_token": token, "phone": "13700137000"}).status_code == 403
    entries = audit.entries(tenant_app.extensions["keliu"].engine)
    assert [(e.user_name, e.action, e.mall_id) for e in entries] == [
        ("m1op", "member.view", "m1"), ("m1op", "member.export", "m1"), ("m1op", "member.view", "m1"),
        ("m2op", "member.list", "m2"), ("m1op", "member.list", "m1")]
    assert all(e.address == "127.0.0.1" for e in entries)
    trail = m1.get("/admin/audit").get_data(as_text=True)
    assert "member.export" in trail and "m2op" not in trail
    assert s2.get("/admin/audit").status_code == 403
    admin = tenant_app.test_client()
    AuthActions(admin).login()
    token = csrf_of(admin.get(f"/admin/members/{mid}").get_data(as_text=True))
    r = admin.post(f"/admin/members/{mid}/phone", data={"csrf_token": token, "phone": "13700137000",
                                                       "reason": "typo at the desk"})
    assert r.status_code == 303 and member_of(tenant_app, "+8613700137000") == mid
    assert admin.post(f"/admin/members/{mid}/delete", data={"csrf_token": token, "confirm": "no"}).status_code == 400
    assert admin.post(f"/admin/members/{mid}/delete",
                      data={"csrf_token": token, "confirm": str(mid)}).status_code == 303
    last = audit.entries(tenant_app.extensions["keliu"].engine, limit=2)
    assert [(e.action, e.target) for e in last] == [("member.delete", f"member:{mid}"),
                                                   ("member.correct", f"member:{mid}")]
    assert last[1].detail == {"field": "phone", "reason": "typo at the desk"}
    assert "13700137000" not in json.dumps([e.detail for e in audit.entries(tenant_app.extensions["keliu"].engine)])


def test_kick_extend_and_splash_are_audited(app: Flask, phone: Phone, sms: ConsoleSms, client: Any,
                                            auth: AuthActions) -> None:
    phone.login(sms)
    auth.login()
    with app.extensions["keliu"].engine.connect() as conn:
        sid = conn.execute(sa.text("SELECT id FROM portal_sessions")).scalar()
    token = csrf_of(client.get("/admin").get_data(as_text=True))
    client.post(f"/admin/sessions/{sid}/extend", data={"csrf_token": token, "minutes": "30"})
    client.post(f"/admin/sessions/{sid}/kick", data={"csrf_token": token})
    client.post("/admin/splash/demo-store", data={"csrf_token": token, "title": "Hi", "offer": "", "color": "#112233"})
    got = [(e.action, e.target, e.detail, e.mall_id) for e in audit.entries(app.extensions["keliu"].engine)]
    splash = {"title": "Hi", "title_en": "", "offer": "", "offer_en": "", "color": "#112233"}
    assert got == [("splash.update", "store:demo-store", splash, "demo-mall"),
                   ("session.kick", f"session:{sid}", {}, "demo-mall"),
                   ("session.extend", f"session:{sid}", {"minutes": 30}, "demo-mall")]


def test_cli_export_correct_delete(app: Flask, phone: Phone, sms: ConsoleSms, gate: MemoryGate, db_url: str,
                                   var_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    phone.login(sms, marketing=True)
    mid = member_of(app, "+8613812345678")
    monkeypatch.setenv("KELIU_DATABASE_URL", db_url)
    monkeypatch.setenv("KELIU_VAR_DIR", str(var_dir))
    from keliu.cli import cli

    out = CliRunner().invoke(cli, ["member", "export", "138 1234 5678"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["member"]["id"] == mid
    out = CliRunner().invoke(cli, ["member", "export", "13812345678", "--format", "text", "--lang", "en",
                                   "-o", str(tmp_path / "me.txt")])
    text = (tmp_path / "me.txt").read_text(encoding="utf-8")
    assert out.exit_code == 0 and "== Logins ==" in text and "+8613812345678" in text
    out = CliRunner().invoke(cli, ["member", "correct", "13812345678", "--new-phone", "13700137000"])
    assert out.exit_code == 0 and member_of(app, "+8613700137000") == mid
    out = CliRunner().invoke(cli, ["member", "delete", "13700137000"], input="n\n")
    assert out.exit_code != 0 and member_of(app, "+8613700137000") == mid
    out = CliRunner().invoke(cli, ["member", "delete", "13700137000", "--yes"])
    assert out.exit_code == 0, out.output
    with app.extensions["keliu"].engine.connect() as conn:
        assert rights.find(conn, "+8613700137000") is None
        assert conn.execute(sa.text("SELECT count(*) FROM logins")).scalar() == 0
    acts = [(e.user_name.startswith("cli:"), e.action, e.address) for e in audit.entries(app.extensions["keliu"].engine)]
    assert acts == [(True, "member.delete", "local"), (True, "member.correct", "local"),
                    (True, "member.export", "local"), (True, "member.export", "local")]
    out = CliRunner().invoke(cli, ["member", "export", "13700137000"])
    assert out.exit_code != 0 and "no member" in str(out.exception)


def test_admin_member_page_sets_and_removes_tags_audited(tenant_app: Flask, sms: ConsoleSms) -> None:
    """Member tags for campaign segments: set and removed on the console's member page by whoever sees the member
    (here their mall's operator; another mall's cannot), every change audited; a bad tag is refused, nothing set."""
    from marketing.store import tags as member_tags

    Phone(tenant_app, "10.77.0.20").login(sms)
    mid = member_of(tenant_app, "+8613812345678")
    m1, m2 = tenant_app.test_client(), tenant_app.test_client()
    AuthActions(m1).login("m1op", "pw-m1")
    AuthActions(m2).login("m2op", "pw-m2")
    page = m1.get(f"/admin/members/{mid}?lang=en").get_data(as_text=True)
    assert 'id="tag-form"' in page and "For campaign segments" in page
    token = csrf_of(page)
    r = m1.post(f"/admin/members/{mid}/tags", data={"csrf_token": token, "add": "VIP"})
    assert r.status_code == 303 and r.headers["Location"].endswith("?done=tagged")
    m1.post(f"/admin/members/{mid}/tags", data={"csrf_token": token, "add": "团购"})
    page = m1.get(f"/admin/members/{mid}?lang=zh-CN").get_data(as_text=True)
    assert 'data-tag="vip"' in page and 'data-tag="团购"' in page and "标签已更新" not in page
    bad = m1.post(f"/admin/members/{mid}/tags?lang=en", data={"csrf_token": token, "add": "no spaces!"})
    assert bad.status_code == 422 and 'id="tag-error"' in bad.get_data(as_text=True)
    assert m2.post(f"/admin/members/{mid}/tags", data={"csrf_token": csrf_of(m2.get("/admin/members").get_data(
        as_text=True)), "add": "x"}).status_code == 404  # another mall's operator does not see the member
    r = m1.post(f"/admin/members/{mid}/tags", data={"csrf_token": token, "remove": "vip"})
    assert r.status_code == 303
    engine = tenant_app.extensions["keliu"].engine
    with engine.connect() as conn:
        assert member_tags.tags_of(conn, mid) == ["团购"]
    acts = [(e.action, e.target, e.user_name) for e in audit.entries(engine) if e.action.startswith("member.")
            and "tag" in e.action]
    assert sorted(acts) == sorted([("member.tag", f"member:{mid}", "m1op"), ("member.tag", f"member:{mid}", "m1op"),
                                   ("member.untag", f"member:{mid}", "m1op")])


def test_cli_member_tag_add_remove_list(app: Flask, phone: Phone, sms: ConsoleSms, db_url: str, var_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    phone.login(sms)
    mid = member_of(app, "+8613812345678")
    monkeypatch.setenv("KELIU_DATABASE_URL", db_url)
    monkeypatch.setenv("KELIU_VAR_DIR", str(var_dir))
    from keliu.cli import cli

    out = CliRunner().invoke(cli, ["member", "tag", "add", "138 1234 5678", "VIP", "student"])
    assert out.exit_code == 0 and out.output.strip() == f"member #{mid}: student, vip", out.output
    out = CliRunner().invoke(cli, ["member", "tag", "remove", f"id:{mid}", "student"])
    assert out.exit_code == 0 and out.output.strip() == f"member #{mid}: vip", out.output
    out = CliRunner().invoke(cli, ["member", "tag", "list", "13812345678"])
    assert out.exit_code == 0 and out.output == "vip\n"
    out = CliRunner().invoke(cli, ["member", "tag", "add", "13812345678", "no spaces"])
    assert out.exit_code != 0 and "tag" in str(out.exception)
    out = CliRunner().invoke(cli, ["member", "tag", "add", "id:999999", "vip"])
    assert out.exit_code != 0
    acts = [(e.user_name.startswith("cli:"), e.action) for e in audit.entries(app.extensions["keliu"].engine)]
    assert acts == [(True, "member.untag"), (True, "member.tag")]
