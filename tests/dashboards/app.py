"""The portal app with the dashboards blueprint, three tenants' users and a known clock (test edges)."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.dashboards.scenario import D1, D2, MALLS, STORES, epoch

#: the app's clock: 18:00 store-local on D2, so "today" is D2
NOW = epoch(D2, 18)
USERS = {
    "boss-s1": ("store", None, "s1"),
    "boss-s3": ("store", None, "s3"),
    "ops-m1": ("mall", "m1", None),
}
PASSWORD = "correct horse battery staple"


def keliu_config(tmp: Path, database_url: str | None = None) -> dict[str, Any]:
    return {
        "database_url": database_url or f"sqlite:///{tmp / 'keliu.db'}",
        "var_dir": str(tmp / "var"),
        "malls": [{"id": m, "name": n} for m, n in MALLS.items()],
        "stores": [{"id": s, "mall": m, "name": n} for s, (m, n) in STORES.items()],
        "portal": {"store": "s1", "admin_password": PASSWORD, "admin_login_per_15min": 100000},
    }


def make_app(tmp: Path, reports: Any | None = None, database_url: str | None = None,
             clock: float = NOW) -> Flask:
    from keliu.accounts.users import create_user
    from portal.app import create_app, start_up

    app = create_app({"KELIU": keliu_config(tmp, database_url), "TESTING": True, "WTF_CSRF_ENABLED": False,
                      "CLOCK": lambda: clock})
    start_up(app)
    if reports is not None:
        app.extensions["dashboards.reports"] = reports
    engine = app.extensions["keliu"].engine
    for name, (role, mall, store) in USERS.items():
        create_user(engine, name, PASSWORD, role, mall_id=mall, store_id=store)  # type: ignore[arg-type]
    return app


def login(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    r = client.post("/admin/login", data={"name": name, "password": PASSWORD})
    assert r.status_code == 302, r.status_code
    return client


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


__all__ = ["D1", "D2", "NOW", "USERS", "days", "login", "make_app"]
