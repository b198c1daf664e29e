"""Fixtures of the portal tests: ``app``, ``client``, ``runner``, ``auth`` (Flask's shape), plus the injected edges
``gate`` (MemoryGate), ``clock`` (settable epoch seconds), ``sms`` (console backend capturing codes) and
``neighbours`` (IP → MAC table standing in for the kernel's)."""
from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from keliu.gate import MemoryGate
from portal.app import create_app, start_up
from portal.edges.sms_backends import ConsoleSms

T0 = 1_795_000_000.0  # 2026-11-18, a fixed "now"


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gate(clock: FakeClock) -> MemoryGate:
    return MemoryGate(clock)


@pytest.fixture
def sms() -> ConsoleSms:
    return ConsoleSms(io.StringIO())


@pytest.fixture
def neighbours() -> dict[str, str]:
    return {"10.77.0.20": "3c:22:fb:00:00:01", "10.77.0.21": "3c:22:fb:00:00:02"}


@pytest.fixture
def sqlite_url(migrated_sqlite_url: str) -> str:
    """The portal's tests start from a migrated database (a copy of the session's template, tests/conftest.py)."""
    return migrated_sqlite_url


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def make_app(db_url: str, var_dir: Path, gate: Any, clock: Any, sms_backend: Any, neighbours: dict[str, str],
             **keliu: Any) -> Flask:
    overrides: dict[str, Any] = {"database_url": db_url, "var_dir": str(var_dir),
                                 "portal": {"public_url": "http://10.77.0.1:8080"}}
    for key, value in keliu.items():
        if isinstance(value, dict):
            overrides.setdefault(key, {}).update(value)
        else:
            overrides[key] = value
    app = create_app({"KELIU": overrides, "TESTING": True, "GATE": gate, "CLOCK": clock, "SMS": sms_backend,
                      "NEIGHBOURS": neighbours.get})
    start_up(app)
    if "admin_password" not in overrides.get("portal", {}):
        # the generated first password must be changed at the first login (tests/portal/test_accounts.py); these
        # tests' admin has done it, keeping the same text so that they log in with keys.admin_password()
        from keliu import keys
        from keliu.accounts.users import set_password

        set_password(app.extensions["keliu"].engine, "admin", keys.admin_password(var_dir))
    _APPS.append(app)
    return app


_APPS: list[Flask] = []


@pytest.fixture(autouse=True)
def _isolated(var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No KELIU_* variable or ./keliu.toml of the developer leaks into a test; every app's pool is closed after."""
    for name in [n for n in os.environ if n.startswith("KELIU_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(var_dir.parent)
    monkeypatch.setattr("keliu.accounts.users.HASH_METHOD", "pbkdf2:sha256:1000")  # scrypt costs ~0.2 s a hash
    yield
    while _APPS:
        _APPS.pop().extensions["keliu"].engine.dispose()


@pytest.fixture
def app(db_url: str, var_dir: Path, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
        neighbours: dict[str, str]) -> Iterator[Flask]:
    yield make_app(db_url, var_dir, gate, clock, sms, neighbours)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"|id="csrf_token"[^>]*value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1) or m.group(2)


class Phone:
    """A shopper's phone on the LAN: a test client whose requests come from one IP."""

    def __init__(self, app: Flask, ip: str) -> None:
        self.app = app
        self.ip = ip
        self.http = app.test_client()

    def get(self, path: str, host: str | None = None, **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}))
        if host:
            headers["Host"] = host
        return self.http.get(path, headers=headers, environ_base={"REMOTE_ADDR": self.ip}, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.http.post(path, environ_base={"REMOTE_ADDR": self.ip}, **kw)

    def splash_token(self) -> str:
        return csrf_of(self.get("/").get_data(as_text=True))

    def login(self, sms: ConsoleSms, number: str = "13812345678", **consents: bool) -> Any:
        token = self.splash_token()
        r = self.post("/login/sms/code", data={"csrf_token": token, "phone": number})
        assert r.status_code == 200, r.get_data(as_text=True)
        from portal.core.phone import normalize

        code = sms.last[normalize(number)]
        data = {"csrf_token": token, "phone": number, "code": code, "terms": "1"}
        data.update({k: "1" for k, v in consents.items() if v})
        return self.post("/login/sms/verify", data=data)


@pytest.fixture
def phone(app: Flask) -> Phone:
    return Phone(app, "10.77.0.20")


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, name: str = "admin", password: str | None = None) -> Any:
        app = self.client.application
        if password is None:
            from keliu import keys

            password = keys.admin_password(app.extensions["keliu"].cfg.var_dir)
        token = csrf_of(self.client.get("/admin/login").get_data(as_text=True))
        return self.client.post("/admin/login", data={"csrf_token": token, "name": name, "password": password})

    def logout(self) -> Any:
        token = csrf_of(self.client.get("/admin").get_data(as_text=True))
        return self.client.post("/admin/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


#: the access log's columns every_row compares by rank (ids named without a foreign key) or not at all (links)
ACCESSLOG_LINKS = {"access_log": {"member_id": "members", "session_id": "portal_sessions"}}
CHAINED = {"access_log": {"hash", "prev_hash"}, "accesslog_head": {"hash", "prev_hash"}}


def every_row(url: str, random: dict[str, set[str]] | None = None,
              links: dict[str, dict[str, str]] | None = None) -> dict[str, list[tuple[tuple[str, Any], ...]]]:
    """Every row of every table of the database at ``url``, found by reflection (not by the models: a column the
    code forgot is still compared), as comparable values: timestamps as aware UTC (SQLite stores them naive),
    surrogate ids (an integer primary key ``id``) and the foreign keys to them as ranks, since PostgreSQL's
    sequences skip values (``INSERT … ON CONFLICT`` takes one even when it updates) where SQLite's do not.
    ``random``: table → columns whose values are random draws (an SMS code's hash, a token's nonce), shown as
    ``"<random>"`` when set. ``links``: table → column → table whose ``id`` it names without a foreign key (the
    access log outlives the rows it names), ranked like a foreign key. The access log's are always ranked, and its
    hash links, computed over the raw ids, are always shown as ``"<random>"`` (``keliu accesslog verify`` checks
    them; tests/portal/test_login_store.py does so on both databases)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        md = sa.MetaData()
        md.reflect(engine)
        out: dict[str, list[tuple[tuple[str, Any], ...]]] = {}
        with engine.connect() as conn:
            ranks: dict[str, dict[Any, int]] = {}
            for t in md.sorted_tables:
                pk = list(t.primary_key.columns)
                if len(pk) == 1 and pk[0].name == "id" and isinstance(pk[0].type, sa.Integer):
                    ids = conn.execute(sa.select(pk[0]).order_by(pk[0])).scalars().all()
                    ranks[t.name] = {v: i for i, v in enumerate(ids)}
            for t in md.sorted_tables:
                refs = {fk.parent.name: fk.column.table.name for fk in t.foreign_keys
                        if fk.column.name == "id" and fk.column.table.name in ranks}
                refs.update(ACCESSLOG_LINKS.get(t.name, {}))
                refs.update((links or {}).get(t.name, {}))

                drawn = (random or {}).get(t.name, set()) | CHAINED.get(t.name, set())

                def value(col: str, v: Any, t: sa.Table = t, refs: dict[str, str] = refs,
                          drawn: set[str] = drawn) -> Any:
                    if v is None:
                        return None
                    if col in drawn:
                        return "<random>"
                    if col == "id" and t.name in ranks:
                        return ("#", ranks[t.name][v])
                    if col in refs:
                        return ("#", ranks[refs[col]][v])
                    if isinstance(v, datetime):
                        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
                    return v

                rows = conn.execute(sa.select(t)).mappings().all()
                out[t.name] = sorted((tuple(sorted((k, value(k, v)) for k, v in r.items())) for r in rows),
                                     key=repr)
    finally:
        engine.dispose()
    return out
