"""Accounts: ``keliu user`` as a real process (its errors: one line, exit 2), the forced change of a generated
password, a store manager made by ``keliu user add`` seeing only their store (dashboard API and admin), the user
pages' tenancy, the console's catalog, and the splash editor's logo checks."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from keliu.accounts import i18n as console
from keliu.accounts.users import AdminUser, load_user, name_problem, password_problem
from portal.core.terms import DEFAULT_TERMS, LOGO_MAX, logo_type, terms_text

KELIU = [sys.executable, "-m", "keliu.cli"]
ROOT = Path(__file__).resolve().parents[2]
TOML = """database_url = "{db}"
var_dir = "{var}"
[[malls]]
id = "m1"
name = "万达广场"
[[malls]]
id = "m2"
name = "Joy City"
[[stores]]
id = "s1"
mall = "m1"
name = "星巴克"
[[stores]]
id = "s2"
mall = "m1"
name = "优衣库"
[[stores]]
id = "s3"
mall = "m2"
name = "Apple"
[portal]
store = "s1"
[sensor]
store = "s1"
"""
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PASSWORD = "a store manager's own password"


def write_config(tmp: Path, database_url: str | None = None) -> Path:
    (tmp / "keliu.toml").write_text(TOML.format(db=database_url or f"sqlite:///{tmp / 'keliu.db'}", var=tmp / "var"))
    return tmp


def keliu(tmp: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(KELIU + list(args), cwd=tmp, env=env, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


# --- pure ------------------------------------------------------------------------------------------------------


def test_console_catalogs_hold_the_same_keys_and_a_missing_one_shows() -> None:
    assert set(console.CATALOG["zh-CN"]) == set(console.CATALOG["en"])
    assert console.t("en", "nav_users") == "Users" and console.t("zh-CN", "nav_users") == "账号管理"
    assert console.t("en", "no.such.key") == "⟦no.such.key⟧"


@pytest.mark.parametrize(("password", "ok"), [("short", False), ("ten chars!", True), (" padded password", False),
                                              ("x" * 257, False), ("tab\tinside-pw", False)])
def test_password_rules(password: str, ok: bool) -> None:
    assert (password_problem(password) is None) is ok


@pytest.mark.parametrize(("name", "ok"), [("boss-s1", True), ("a.b@c", True), ("", False), ("-x", False),
                                          ("with space", False), ("x" * 65, False)])
def test_name_rules(name: str, ok: bool) -> None:
    assert (name_problem(name) is None) is ok


def test_who_manages_whom() -> None:
    ops = AdminUser("ops", "mall", mall_id="m1")
    assert ops.can_manage(AdminUser("b", "store", "m1", "s1"), "m1")
    assert ops.can_manage(AdminUser("c", "staff", "m1", "s2"), "m1")
    assert not ops.can_manage(AdminUser("b", "store", "m2", "s3"), "m2")  # another mall
    assert not ops.can_manage(AdminUser("o2", "mall", "m1"), "m1")  # not a peer
    assert not ops.can_manage(AdminUser("a", "admin"), None)
    assert AdminUser("a", "admin").can_manage(AdminUser("o2", "mall", "m1"), "m1")
    assert not AdminUser("b", "store", "m1", "s1").can_manage(AdminUser("c", "staff", "m1", "s1"), "m1")


def test_logo_types_by_magic_bytes() -> None:
    assert logo_type(PNG) == "image/png"
    assert logo_type(b"\xff\xd8\xff\xe0" + b"\x00" * 10) == "image/jpeg"
    assert logo_type(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert logo_type(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert logo_type(b"GIF89a") is None and logo_type(b"") is None


def test_default_terms_state_what_the_law_requires() -> None:
    zh, en = terms_text("zh-CN", "", ""), terms_text("en", "", "")
    assert "实名" in zh and "第二十一条" in zh and "六个月" in zh and "第 82 号" in zh and "违法" in zh
    assert "real-name" in en.lower() and "six months" in en and "No. 82" in en and "unlawful" in en
    assert terms_text("en", "本店条款", "") == "本店条款"  # the English page falls back to the store's own text
    assert terms_text("zh-CN", "", "") == DEFAULT_TERMS["zh-CN"]


# --- the CLI ----------------------------------------------------------------------------------------------------


def test_user_cli_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    tmp = write_config(tmp_path)
    cases = [
        (["user", "add", "x", "--role", "store", "--store", "nosuch"], "", "keliu: store: no store 'nosuch'"),
        (["user", "add", "x", "--role", "mall", "--mall", "nosuch"], "", "keliu: mall: no mall 'nosuch'"),
        (["user", "add", "x", "--role", "store"], "", "keliu: store: required for --role store"),
        (["user", "add", "x", "--role", "admin", "--store", "s1"], "", "keliu: store: only for --role store"),
        (["user", "add", "bad name", "--role", "admin"], "", "keliu: name: 'bad name'"),
        (["user", "add", "x", "--role", "admin", "--password-stdin"], "short\n", "keliu: password: at least 10"),
        (["user", "passwd", "nobody"], "", "keliu: name: no user 'nobody'"),
        (["user", "remove", "nobody"], "", "keliu: name: no user 'nobody'"),
    ]
    for args, stdin, line in cases:
        out = keliu(tmp, *args, stdin=stdin)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stderr.startswith(line) and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
    assert "x" not in keliu(tmp, "user", "list").stdout.split()  # nothing was created on the way


def test_user_cli_add_list_passwd_remove(tmp_path: Path) -> None:
    tmp = write_config(tmp_path)
    out = keliu(tmp, "user", "add", "boss-s1", "--role", "store", "--store", "s1", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert out.returncode == 0 and out.stdout.strip() == "added boss-s1 (store of store s1)", out.stderr
    out = keliu(tmp, "user", "add", "ops", "--role", "mall", "--mall", "m1")
    generated = re.search(r"password: (\S+)  \(to be changed at the first login\)", out.stdout)
    assert out.returncode == 0 and generated is not None, out.stdout
    again = keliu(tmp, "user", "add", "ops", "--role", "admin")
    assert again.returncode == 1 and again.stderr.startswith("keliu: user 'ops' exists")
    listed = [line.split() for line in keliu(tmp, "user", "list").stdout.splitlines()]
    assert ["boss-s1", "store", "m1", "s1"] in listed
    assert ["ops", "mall", "m1", "-", "must", "change", "password"] in listed
    assert keliu(tmp, "user", "passwd", "ops", "--password-stdin", stdin="another long one\n").returncode == 0
    assert ["ops", "mall", "m1", "-"] in [line.split() for line in keliu(tmp, "user", "list").stdout.splitlines()]
    assert keliu(tmp, "user", "remove", "ops").stdout.strip() == "removed ops"
    assert keliu(tmp, "user", "add", "root", "--role", "admin").returncode == 0
    last = keliu(tmp, "user", "remove", "root")
    assert last.returncode == 1 and "last admin" in last.stderr


# --- the console ------------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def app(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The portal app on SQLite and on PostgreSQL (``portal_0005``'s columns on both); ``keliu user`` run in
    ``tmp_path`` uses the same database."""
    from portal.app import create_app, start_up

    for name in [n for n in os.environ if n.startswith("KELIU_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr("keliu.accounts.users.HASH_METHOD", "pbkdf2:sha256:1000")
    url = request.getfixturevalue("migrated_postgres_url" if request.param == "postgresql" else "migrated_sqlite_url")
    tmp = write_config(tmp_path, url)
    monkeypatch.chdir(tmp)
    from keliu.gate import MemoryGate
    from portal.edges.sms_backends import ConsoleSms

    clock = lambda: 1_795_000_000.0
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "CLOCK": clock, "GATE": MemoryGate(clock),
                      "SMS": ConsoleSms(io.StringIO()), "NEIGHBOURS": {}.get})
    start_up(app)
    yield app
    app.extensions["keliu"].engine.dispose()


def login(app: Flask, name: str, password: str) -> FlaskClient:
    c = app.test_client()
    r = c.post("/admin/login", data={"name": name, "password": password})
    assert r.status_code == 302, r.status_code
    return c


def test_the_generated_first_password_must_be_changed(app: Flask) -> None:
    from keliu import keys

    engine = app.extensions["keliu"].engine
    generated = keys.admin_password(app.extensions["keliu"].cfg.var_dir)
    user = load_user(engine, "admin")
    assert user is not None and user.must_change
    c = login(app, "admin", generated)
    for page in ("/admin", "/dashboard", "/admin/users", "/admin/splash/s1"):
        r = c.get(page)
        assert r.status_code == 302 and r.headers["Location"].startswith("/admin/password?next="), page
    api = c.get("/api/v1/operator/dashboard")
    assert api.status_code == 403 and api.json["error"] == "password_change_required"
    page = c.get("/admin/password?lang=en").get_data(as_text=True)
    assert "This is a generated first password" in page
    bad = [({"old": generated, "new": "short", "new2": "short"}, "at least 10 characters"),
           ({"old": generated, "new": "a brand new pw", "new2": "a brand new pX"}, "differ"),
           ({"old": generated, "new": generated, "new2": generated}, "must differ"),
           ({"old": "not the old one", "new": "a brand new pw", "new2": "a brand new pw"}, "current password is wrong")]
    for form, message in bad:
        r = c.post("/admin/password?lang=en", data=form)
        assert r.status_code == 400 and message in r.get_data(as_text=True), message
    r = c.post("/admin/password?next=/dashboard", data={"old": generated, "new": "a brand new pw",
                                                         "new2": "a brand new pw"})
    assert r.status_code == 303 and r.headers["Location"] == "/dashboard"
    assert c.get("/admin").status_code == 200  # this browser stays logged in, with a fresh session
    user = load_user(engine, "admin")
    assert user is not None and not user.must_change
    # a restart does not put the generated password back
    from portal.app import start_up

    start_up(app)
    assert app.test_client().post("/admin/login", data={"name": "admin", "password": generated}).status_code == 401
    login(app, "admin", "a brand new pw")


def test_a_store_manager_added_by_the_cli_sees_only_their_store(app: Flask, tmp_path: Path) -> None:
    out = keliu(tmp_path, "user", "add", "boss-s1", "--role", "store", "--store", "s1", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    c = login(app, "boss-s1", PASSWORD)
    assert c.get("/dashboard").headers["Location"].startswith("/dashboard/store/s1")
    assert c.get("/api/v1/stores/s1/dashboard").status_code == 200
    for path in ("/api/v1/stores/s2/dashboard", "/api/v1/stores/s3/dashboard", "/api/v1/malls/m1/dashboard",
                 "/api/v1/operator/dashboard", "/dashboard/store/s2", "/admin/splash/s2", "/admin/users"):
        assert c.get(path).status_code == 403, path
    me = c.get("/api/v1/dashboard/me").json
    assert [s["id"] for s in me["stores"]] == ["s1"] and me["malls"] == [] and me["operator"] is False
    assert c.get("/admin/splash/s1").status_code == 200
    assert c.get("/admin/splash").headers["Location"].startswith("/admin/splash/s1")
    nav = c.get("/admin?lang=en").get_data(as_text=True)
    assert 'id="nav-dashboard"' in nav and 'id="nav-users"' not in nav  # no user pages for a store manager


def test_staff_land_on_the_counter_and_see_no_console(app: Flask) -> None:
    from keliu.accounts.users import create_user

    create_user(app.extensions["keliu"].engine, "till-1", PASSWORD, "staff", mall_id="m1", store_id="s1")
    c = app.test_client()
    r = c.post("/admin/login", data={"name": "till-1", "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/counter"
    for path in ("/admin", "/admin/splash/s1", "/admin/users", "/dashboard/store/s1", "/api/v1/stores/s1/dashboard"):
        assert c.get(path).status_code == 403, path
    assert c.get("/admin/password").status_code == 200  # their own password, yes


def test_a_mall_operator_manages_only_their_malls_store_users(app: Flask) -> None:
    from keliu.accounts.users import create_user

    engine = app.extensions["keliu"].engine
    create_user(engine, "ops-m1", PASSWORD, "mall", mall_id="m1")
    create_user(engine, "boss-s3", PASSWORD, "store", mall_id="m2", store_id="s3")
    c = login(app, "ops-m1", PASSWORD)
    page = c.get("/admin/users?lang=en").get_data(as_text=True)
    assert "boss-s3" not in page and 'value="s3"' not in page and 'value="admin"' not in page
    r = c.post("/admin/users?lang=en", data={"name": "boss-s2", "role": "store", "store": "s2"})
    generated = re.search(r"First password: (\S+) ", r.get_data(as_text=True))
    assert r.status_code == 200 and generated is not None
    added = load_user(engine, "boss-s2")
    assert added is not None and added.store_id == "s2" and added.must_change
    assert c.post("/admin/users", data={"name": "boss-x", "role": "store", "store": "s3"}).status_code == 403
    assert c.post("/admin/users", data={"name": "ops-2", "role": "mall", "mall": "m1"}).status_code == 403
    assert c.post("/admin/users", data={"name": "root2", "role": "admin"}).status_code == 403
    assert c.post("/admin/users/boss-s3/password").status_code == 403
    assert c.post("/admin/users/boss-s3/remove").status_code == 403
    assert c.post("/admin/users/admin/remove").status_code == 403
    assert c.post("/admin/users/boss-s2/remove").status_code == 200 and load_user(engine, "boss-s2") is None
    # the new manager's generated password works once, then must be changed
    fresh = app.test_client()
    create_user(engine, "boss-s2", generated.group(1), "store", mall_id="m1", store_id="s2", must_change=True)
    fresh.post("/admin/login", data={"name": "boss-s2", "password": generated.group(1)})
    assert fresh.get("/dashboard").headers["Location"].startswith("/admin/password")


def test_logo_upload_refuses_a_wrong_type_and_an_oversized_file(app: Flask) -> None:
    from keliu.accounts.users import create_user

    create_user(app.extensions["keliu"].engine, "boss-s1", PASSWORD, "store", mall_id="m1", store_id="s1")
    c = login(app, "boss-s1", PASSWORD)
    form = {"title": "星巴克", "offer": "", "title_en": "Starbucks", "offer_en": "", "terms_zh": "", "terms_en": "",
            "color": "#0a7d3b"}

    def post(name: str, data: bytes) -> Any:
        return c.post("/admin/splash/s1?lang=en", data={**form, "logo": (io.BytesIO(data), name)},
                      content_type="multipart/form-data")

    svg = post("logo.png", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    assert svg.status_code == 400 and "PNG, JPEG or WebP" in svg.get_data(as_text=True)
    big = post("logo.png", PNG + b"\x00" * LOGO_MAX)
    assert big.status_code == 400 and f"at most {LOGO_MAX // 1024} KB" in big.get_data(as_text=True)
    huge = post("logo.png", PNG + b"\x00" * (2 * LOGO_MAX))
    assert huge.status_code == 413
    assert app.test_client().get("/logo").status_code == 404  # nothing was stored
    ok = post("anything.bin", PNG)
    assert ok.status_code == 303
    logo = app.test_client().get("/logo")
    assert logo.status_code == 200 and logo.data == PNG and logo.headers["Content-Type"] == "image/png"
    assert logo.headers["X-Content-Type-Options"] == "nosniff"
    splash = app.test_client().get("/?lang=en").get_data(as_text=True)
    assert 'id="logo" src="/logo?v=' in splash and "<h1>Starbucks</h1>" in splash
    assert 'href="/terms?lang=en"' in splash
    assert "<h1>星巴克</h1>" in app.test_client().get("/?lang=zh-CN").get_data(as_text=True)
    terms = app.test_client().get("/terms?lang=en").get_data(as_text=True)
    assert "six months" in terms
    # the store's own terms replace the default
    r = c.post("/admin/splash/s1", data={**form, "terms_zh": "本店条款：实名上网。"}, content_type="multipart/form-data")
    assert r.status_code == 303
    assert "本店条款：实名上网。" in app.test_client().get("/terms?lang=zh-CN").get_data(as_text=True)
    # the preview may be framed by the console only
    preview = c.get("/admin/splash/s1/preview?lang=en")
    assert preview.status_code == 200 and "frame-ancestors 'self'" in preview.headers["Content-Security-Policy"]
    assert "Starbucks" in preview.get_data(as_text=True)
    assert app.test_client().get("/favicon.ico").headers["Content-Type"] == "image/png"


def test_guesses_at_the_current_password_back_off(app: Flask) -> None:
    from keliu.accounts.users import create_user

    create_user(app.extensions["keliu"].engine, "boss-s1", PASSWORD, "store", mall_id="m1", store_id="s1")
    c = login(app, "boss-s1", PASSWORD)
    guess = {"new": "a brand new pw", "new2": "a brand new pw"}
    answers = [c.post("/admin/password?lang=en", data={**guess, "old": f"guess number {i}"}).get_data(as_text=True)
               for i in range(4)]
    assert all("current password is wrong" in a for a in answers[:3])
    assert "Too many attempts" in answers[3]
    # the right one waits too (the clock stands still here): nothing changed
    r = c.post("/admin/password?lang=en", data={**guess, "old": PASSWORD})
    assert r.status_code == 400 and "Too many attempts" in r.get_data(as_text=True)
    from keliu.accounts.users import check_login

    assert check_login(app.extensions["keliu"].engine, "boss-s1", PASSWORD) is not None  # the old one still holds


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_splash_terms_link_keeps_the_versioned_text(lang: str) -> None:
    """The splash shows the terms consent in three parts (the middle one links to /terms); together they are the
    text whose version the consent rows name, so no new version is needed."""
    from portal.core import i18n

    parts = (i18n.gettext(lang, k) for k in ("terms_pre", "terms_link", "terms_post"))
    assert "".join(parts) == i18n.gettext(lang, "terms")


def test_an_unknown_name_costs_the_same_hash_as_a_wrong_password(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user enumeration by timing: a login of a name that does not exist checks the password against a hash made
    with the method real passwords have (one check either way)."""
    from werkzeug.security import check_password_hash

    from keliu.accounts import users

    engine = app.extensions["keliu"].engine
    users.create_user(engine, "boss-timing", "a-long-password-1", "admin")
    checked: list[str] = []

    def spy(pwhash: str, password: str) -> bool:
        checked.append(pwhash.split("$", 1)[0])
        return check_password_hash(pwhash, password)

    monkeypatch.setattr(users, "check_password_hash", spy)
    assert users.check_login(engine, "no-such-boss", "a-long-password-1") is None
    assert users.check_login(engine, "boss-timing", "a-wrong-password-2") is None
    assert checked == ["pbkdf2:sha256:1000", "pbkdf2:sha256:1000"]


def test_importing_the_accounts_hashes_nothing() -> None:
    """Every keliu process imports the accounts (portal, analytics, the CLI): a scrypt hash at import cost each of
    them about 0.2 s at start here, and many times that on a router's CPU (the VM's portal start)."""
    code = ("import werkzeug.security as w\n"
            "def refuse(*a, **k):\n    raise SystemExit('a password hash at import')\n"
            "w.generate_password_hash = refuse\nimport keliu.accounts.users, portal.app\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
