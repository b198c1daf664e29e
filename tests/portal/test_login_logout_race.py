"""A logout and a login of one device at the same instant, on PostgreSQL: the logout ends the device's session and
writes its access record (session row, device row, then the access log's chain head); the SMS login is one
statement whose CTEs replace that session, upsert the device and extend the chain. Raced over many rounds, neither
may fail with a deadlock (or anything else), the chain must verify (``keliu accesslog verify``), and the sessions
must be consistent: at most one open session for the device, each login and each logout recorded once."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu.accesslog.tables import access_log
from portal.core.login_plan import Choices
from portal.edges.clients import Client
from portal.store import access, sms_login
from portal.store.models import portal_sessions
from tests.conftest import ROOT
from tests.portal.conftest import FakeClock, make_app

pytestmark = pytest.mark.integration
ROUNDS = 40
PHONE = "13812345678"
CLIENT = Client(mac="02:00:00:00:00:01", ip="10.77.0.20", device_id="dev-race")
GENEROUS = {"resend_s": 1, "daily_cap": 10_000, "phone_daily_cap": 30_000, "per_ip_per_hour": 10_000,
            "per_client_per_hour": 10_000, "verify_per_ip_per_hour": 10_000}


@pytest.fixture
def pg_app(migrated_postgres_url: str, var_dir: Path, gate: Any, clock: FakeClock, sms: Any) -> Flask:
    return make_app(migrated_postgres_url, var_dir, gate, clock, sms, {}, sms=GENEROUS)


def login(svc: Any, sms: Any) -> None:
    e164 = sms_login.request_code(svc, CLIENT, PHONE, "zh-CN")
    sms_login.verify_code(svc, CLIENT, PHONE, sms.last[e164], Choices(True, reauth=True), "zh-CN")


def open_sessions(svc: Any) -> list[Any]:
    with svc.engine.connect() as conn:
        return conn.execute(sa.select(portal_sessions.c.id).where(portal_sessions.c.device_id == CLIENT.device_id,
                                                                  portal_sessions.c.ended_at.is_(None))).all()


def race(svc: Any, code: str, errors: list[BaseException], outcomes: Counter[str]) -> list[threading.Thread]:
    """A logout and a login of CLIENT, released together; returns the finished threads."""
    start = threading.Barrier(2)
    now = svc.now()

    def run(name: str, fn: Any) -> None:
        start.wait()
        try:
            outcomes[f"{name}:{fn()}"] += 1
        except BaseException as exc:  # noqa: BLE001 - every failure is collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("logout", lambda: access.end_device(svc, CLIENT, "logout", now))),
               threading.Thread(target=run, args=("login", lambda: sms_login.verify_code(
                   svc, CLIENT, PHONE, code, Choices(True, reauth=True), "zh-CN").session_id > 0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return threads


def test_a_logout_and_a_login_at_the_same_instant_neither_deadlock_nor_fork_the_chain(
        pg_app: Flask, clock: FakeClock, sms: Any, var_dir: Path, migrated_postgres_url: str) -> None:
    svc = pg_app.extensions["keliu"]
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    for _ in range(ROUNDS):
        clock.advance(61)
        if not open_sessions(svc):
            login(svc, sms)  # the device is online when the race starts: the logout has a session to end
            clock.advance(2)  # the code's resend cooldown
        e164 = sms_login.request_code(svc, CLIENT, PHONE, "zh-CN")
        code = sms.last[e164]
        threads = race(svc, code, errors, outcomes)
        assert not any(t.is_alive() for t in threads), "a racer hangs"
        assert len(open_sessions(svc)) <= 1
    assert errors == [], errors  # no deadlock_detected, no serialization failure, nothing
    assert outcomes["login:True"] == ROUNDS
    # every session's login and logout is in the access log exactly once, with the session's id
    with svc.engine.connect() as conn:
        sessions = conn.execute(sa.select(portal_sessions.c.id, portal_sessions.c.end_reason)
                                .where(portal_sessions.c.device_id == CLIENT.device_id)).all()
        records_all = conn.execute(sa.select(access_log.c.session_id, access_log.c.event)).all()
    records = Counter((r.session_id, r.event) for r in records_all if r.session_id is not None)
    assert sessions and all(records[(s.id, "login")] == 1 for s in sessions)
    for s in sessions:
        assert records[(s.id, "logout")] == (1 if s.end_reason == "logout" else 0), s
    assert sum(1 for s in sessions if s.end_reason is None) <= 1
    # the chain: `keliu accesslog verify` over the same database and key (exit 1 naming a bad record otherwise)
    env = {**os.environ, "KELIU_DATABASE_URL": migrated_postgres_url, "KELIU_VAR_DIR": str(var_dir)}
    done = subprocess.run([sys.executable, "-m", "keliu.cli", "accesslog", "verify"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(records_all)} records" in done.stdout, done.stdout
