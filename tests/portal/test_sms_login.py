"""Phone + SMS login through the app: members, consents, devices, sessions, limits, nothing stored half-way."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu.accesslog.tables import access_log
from keliu.gate import AllowClient, MemoryGate, RevokeClient
from portal.edges.sms_backends import ConsoleSms
from portal.store.models import consents, devices, logins, members, portal_sessions, sms_codes
from tests.portal.conftest import T0, FakeClock, Phone, csrf_of, make_app

MAC = "3c:22:fb:00:00:01"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """Every test of this module runs on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue("migrated_postgres_url"))


def rows(app: Flask, table: sa.Table) -> list[Any]:
    with app.extensions["keliu"].engine.connect() as conn:
        return list(conn.execute(sa.select(table)).all())


def api_code(phone: Phone, number: str = "13812345678") -> Any:
    return phone.post("/api/login/sms/code", json={"phone": number})


def api_verify(phone: Phone, code: str, number: str = "13812345678", **consent: bool) -> Any:
    return phone.post("/api/login/sms/verify", json={"phone": number, "code": code,
                                                     "consents": {"terms": True, **consent}})


def test_login_makes_a_member_and_opens_the_gate(app: Flask, phone: Phone, sms: ConsoleSms,
                                                 gate: MemoryGate) -> None:
    r = phone.login(sms, marketing=True)
    assert r.status_code == 303
    (m,) = rows(app, members)
    assert m.phone_e164 == "+8613812345678" and m.first_store_id == "demo-store"
    assert m.created_at.tzinfo is not None
    got = {(c.kind, c.granted, c.version) for c in rows(app, consents)}
    assert got == {("terms", True, "terms-2026-11"), ("marketing", True, "marketing-2026-11"),
                   ("analytics", False, "analytics-2026-11"), ("reauth", False, "reauth-2026-11")}
    (login,) = rows(app, logins)
    assert (login.method, login.member_id, login.ip) == ("sms", m.id, "10.77.0.20")
    (dev,) = rows(app, devices)
    assert dev.device_id == login.device_id and len(dev.device_id) == 16 and dev.reauth_until is None
    (s,) = rows(app, portal_sessions)
    assert gate.log == [AllowClient(MAC, "10.77.0.20", T0 + 86400)]
    assert s.until.timestamp() == T0 + 86400 and s.ended_at is None


def test_no_raw_mac_or_phone_outside_the_member_record(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    phone.login(sms, reauth=True)
    dump = []
    with app.extensions["keliu"].engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            if table == "access_log":
                # the one exception the law makes (MPS Order 82): the login with its phone and MAC, and nothing else
                (rec,) = conn.execute(sa.select(access_log)).all()
                assert (rec.event, rec.phone, rec.mac) == ("login", "+8613812345678", MAC)
                continue
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                values = " ".join(str(v) for v in row)
                if table == "members":
                    values = values.replace("+8613812345678", "")
                dump.append(values.lower())
    text = "\n".join(dump)
    assert "13812345678" not in text
    assert MAC not in text and MAC.replace(":", "") not in text
    assert "13812345678" not in sms._out.getvalue() and "138****5678" in sms._out.getvalue()  # type: ignore


def test_optional_choices_are_not_needed_to_get_online(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    api_code(phone)
    r = api_verify(phone, sms.last["+8613812345678"])
    assert r.status_code == 200 and r.json["online"] is True


def test_missing_terms_stores_nothing(app: Flask, phone: Phone, sms: ConsoleSms, gate: MemoryGate) -> None:
    api_code(phone)
    r = phone.post("/api/login/sms/verify", json={"phone": "13812345678", "code": sms.last["+8613812345678"],
                                                  "consents": {"marketing": True}})
    assert r.status_code == 400 and r.json["error"] == "consent_required"
    assert rows(app, members) == [] and rows(app, portal_sessions) == [] and rows(app, consents) == []
    (code,) = rows(app, sms_codes)
    assert code.used_at is None and code.tries == 0 and gate.log == []


def test_form_without_terms_shows_the_message_in_the_splash(phone: Phone, sms: ConsoleSms) -> None:
    token = phone.splash_token()
    phone.post("/login/sms/code", data={"csrf_token": token, "phone": "13812345678"})
    r = phone.post("/login/sms/verify", data={"csrf_token": token, "phone": "13812345678",
                                              "code": sms.last["+8613812345678"]})
    assert r.status_code == 400 and "请先同意上网服务条款" in r.get_data(as_text=True)


def test_invalid_phone_is_a_clear_400(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    r = api_code(phone, "12345")
    assert r.status_code == 400 and r.json["error"] == "invalid_phone" and "mobile" in r.json["message"]
    assert rows(app, sms_codes) == [] and sms.last == {}


def test_wrong_code_counts_tries_and_locks_after_five(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    api_code(phone)
    good = sms.last["+8613812345678"]
    bad = "000000" if good != "000000" else "111111"
    for _ in range(5):
        r = api_verify(phone, bad)
        assert r.status_code == 400 and r.json["error"] == "code_wrong"
    r = api_verify(phone, good)
    assert r.json["error"] == "code_locked"
    assert rows(app, members) == []


def test_expired_code(phone: Phone, sms: ConsoleSms, clock: FakeClock) -> None:
    api_code(phone)
    clock.advance(300)
    r = api_verify(phone, sms.last["+8613812345678"])
    assert r.status_code == 400 and r.json["error"] == "code_expired"


def test_replayed_code(phone: Phone, sms: ConsoleSms) -> None:
    api_code(phone)
    code = sms.last["+8613812345678"]
    assert api_verify(phone, code).status_code == 200
    r = api_verify(phone, code)
    assert r.status_code == 400 and r.json["error"] == "code_used"


def test_code_is_bound_to_the_device_that_asked(app: Flask, sms: ConsoleSms) -> None:
    a, b = Phone(app, "10.77.0.20"), Phone(app, "10.77.0.21")
    api_code(a)
    r = api_verify(b, sms.last["+8613812345678"])
    assert r.status_code == 400 and r.json["error"] == "code_not_requested"


def test_another_device_neither_holds_up_nor_replaces_nor_uses_the_owners_code(app: Flask, sms: ConsoleSms,
                                                                                clock: FakeClock) -> None:
    """Issue 12, item 5: a third party asking codes for the owner's number, before and after the owner, and
    guessing, changes nothing for the owner (it used to hold the owner up, then replace the owner's code)."""
    owner, other = Phone(app, "10.77.0.20"), Phone(app, "10.77.0.21")
    assert api_code(other).status_code == 202
    assert api_code(owner).status_code == 202  # the other's request does not start the owner's cooldown
    code = sms.last["+8613812345678"]
    clock.advance(61)
    assert api_code(other).status_code == 202  # a later request by another device ...
    r = api_code(other)
    assert r.status_code == 429 and r.json["error"] == "resend_cooldown"  # (its own cooldown holds)
    bad = "000000" if code != "000000" else "111111"
    for guess in (code, bad, bad, bad, bad):  # ... and its tries go to its own code, even with the owner's code
        assert api_verify(other, guess).json["error"] == "code_wrong"
    assert api_verify(other, bad).json["error"] == "code_locked"
    r = api_verify(owner, code)  # ... which neither replaced nor locked the owner's
    assert r.status_code == 200, r.json
    owners = [c for c in rows(app, sms_codes) if c.used_at is not None]
    assert len(owners) == 1 and owners[0].tries == 0


def test_two_devices_cannot_use_up_the_owners_codes_only_abuse_reaches_the_numbers_cap(
        db_url: str, var_dir: Any, gate: MemoryGate, clock: FakeClock, sms: ConsoleSms,
        neighbours: dict[str, str]) -> None:
    """Issue 12, item 5: the daily cap counts per number and device; the number's own cap (all devices) lies
    beyond two devices' worth, so two devices asking for the owner's number do not lock the owner out."""
    neighbours = neighbours | {"10.77.0.22": "3c:22:fb:00:00:03", "10.77.0.23": "3c:22:fb:00:00:04"}
    app = make_app(db_url, var_dir, gate, clock, sms, neighbours, sms={"daily_cap": 3, "phone_daily_cap": 7})
    for attacker in (Phone(app, "10.77.0.21"), Phone(app, "10.77.0.22")):
        for _ in range(3):
            assert api_code(attacker).status_code == 202
            clock.advance(61)
        r = api_code(attacker)
        assert r.status_code == 429 and r.json["error"] == "daily_cap"
    owner = Phone(app, "10.77.0.20")
    assert api_code(owner).status_code == 202
    assert api_verify(owner, sms.last["+8613812345678"]).status_code == 200
    # the number's cap (7): the owner's was the 7th code today; a third device gets none for this number
    third = Phone(app, "10.77.0.23")
    clock.advance(61)
    r = api_code(third)
    assert r.status_code == 429 and r.json["error"] == "daily_cap"
    assert api_code(third, "13900000001").status_code == 202  # other numbers are not held
    clock.advance(86400)
    assert api_code(third).status_code == 202


def test_malformed_code_is_not_a_try(app: Flask, phone: Phone, sms: ConsoleSms) -> None:
    api_code(phone)
    assert api_verify(phone, "12ab").status_code == 400
    (code,) = rows(app, sms_codes)
    assert code.tries == 0


def test_resend_cooldown_then_daily_cap(db_url: str, var_dir: Any, gate: MemoryGate, clock: FakeClock,
                                        sms: ConsoleSms, neighbours: dict[str, str]) -> None:
    app = make_app(db_url, var_dir, gate, clock, sms, neighbours, sms={"daily_cap": 3})
    phone = Phone(app, "10.77.0.20")
    assert api_code(phone).status_code == 202
    r = api_code(phone)
    assert r.status_code == 429 and r.json["error"] == "resend_cooldown" and r.headers["Retry-After"] == "60"
    for _ in range(2):
        clock.advance(61)
        assert api_code(phone).status_code == 202
    clock.advance(61)
    r = api_code(phone)
    assert r.status_code == 429 and r.json["error"] == "daily_cap"
    clock.advance(86400)
    assert api_code(phone).status_code == 202


def test_per_ip_and_per_device_limits(db_url: str, var_dir: Any, gate: MemoryGate, clock: FakeClock,
                                      sms: ConsoleSms, neighbours: dict[str, str]) -> None:
    app = make_app(db_url, var_dir, gate, clock, sms, neighbours, sms={"per_client_per_hour": 2})
    phone = Phone(app, "10.77.0.20")
    assert api_code(phone, "13812345671").status_code == 202
    assert api_code(phone, "13812345672").status_code == 202
    r = api_code(phone, "13812345673")
    assert r.status_code == 429 and r.json["error"] == "rate_limited"
    assert "+8613812345673" not in sms.last
    assert api_code(Phone(app, "10.77.0.21"), "13812345673").status_code == 202
    app2 = make_app(db_url, var_dir, gate, clock, sms, neighbours, sms={"per_ip_per_hour": 1})
    clock.advance(3601)
    assert api_code(Phone(app2, "10.77.0.20"), "13812345674").status_code == 202
    assert api_code(Phone(app2, "10.77.0.20"), "13812345675").status_code == 429


def test_same_phone_in_another_store_is_the_same_member(db_url: str, var_dir: Any, gate: MemoryGate,
                                                        clock: FakeClock, sms: ConsoleSms,
                                                        neighbours: dict[str, str]) -> None:
    tenants = {"malls": [{"id": "m1", "name": "Mall"}],
               "stores": [{"id": "s1", "mall": "m1"}, {"id": "s2", "mall": "m1"}]}
    app1 = make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"store": "s1"}, **tenants)
    Phone(app1, "10.77.0.20").login(sms)
    clock.advance(3600)
    app2 = make_app(db_url, var_dir, gate, clock, sms, neighbours, portal={"store": "s2"}, **tenants)
    Phone(app2, "10.77.0.21").login(sms, "+86 138 1234 5678")
    (m,) = rows(app2, members)
    assert m.first_store_id == "s1"
    assert sorted((lg.store_id, lg.member_id) for lg in rows(app2, logins)) == [("s1", m.id), ("s2", m.id)]


def test_status_page_and_logout(app: Flask, phone: Phone, sms: ConsoleSms, gate: MemoryGate,
                                clock: FakeClock) -> None:
    phone.login(sms)
    clock.advance(3600)
    html = phone.get("/status").get_data(as_text=True)
    assert "23 小时 0 分钟" in html
    token = csrf_of(html)
    r = phone.post("/logout", data={"csrf_token": token})
    assert r.status_code == 200 and gate.log[-1] == RevokeClient(MAC)
    assert phone.get("/generate_204", host="connectivitycheck.gstatic.com").status_code == 302
    (s,) = rows(app, portal_sessions)
    assert s.end_reason == "logout"


def test_returning_member_is_reauthorized_without_sms_if_they_agreed(app: Flask, phone: Phone, sms: ConsoleSms,
                                                                     gate: MemoryGate, clock: FakeClock) -> None:
    phone.login(sms, reauth=True)
    clock.advance(86400 + 60)  # the session expired
    r = phone.get("/generate_204", host="connectivitycheck.gstatic.com")
    assert r.status_code == 204
    assert [lg.method for lg in rows(app, logins)] == ["sms", "reauth"]
    assert isinstance(gate.log[-1], AllowClient)
    clock.advance(7 * 86400)  # past reauth_days after the SMS login
    assert phone.get("/generate_204", host="connectivitycheck.gstatic.com").status_code == 302


def test_no_reauth_without_agreement(phone: Phone, sms: ConsoleSms, clock: FakeClock) -> None:
    phone.login(sms)
    clock.advance(86400 + 60)
    assert phone.get("/generate_204", host="connectivitycheck.gstatic.com").status_code == 302


def test_authorized_client_lost_by_the_gate_is_healed(app: Flask, phone: Phone, sms: ConsoleSms,
                                                      gate: MemoryGate) -> None:
    phone.login(sms)
    gate.allowed.clear()  # e.g. the router rebooted
    assert phone.get("/generate_204", host="connectivitycheck.gstatic.com").status_code == 204
    assert MAC in gate.allowed


def test_reconcile_on_start_follows_the_session_table(db_url: str, var_dir: Any, clock: FakeClock,
                                                      sms: ConsoleSms, neighbours: dict[str, str]) -> None:
    gate = MemoryGate(clock)
    app = make_app(db_url, var_dir, gate, clock, sms, neighbours)
    Phone(app, "10.77.0.20").login(sms)
    restarted = MemoryGate(clock)
    restarted.execute(AllowClient(MAC, "10.77.0.20", T0 + 10))  # stale until
    restarted.execute(AllowClient("3c:22:fb:00:00:09", "10.77.0.29", T0 + 999))  # no session
    make_app(db_url, var_dir, restarted, clock, sms, neighbours)
    assert list(restarted.allowed) == [MAC]
    assert restarted.allowed[MAC].until == T0 + 86400



def test_a_listener_started_later_leaves_the_gate_alone(db_url: str, var_dir: Any, clock: FakeClock,
                                                        sms: ConsoleSms, neighbours: dict[str, str]) -> None:
    """The captive front and the HTTPS listener build the app while the workers log phones in: they must not
    reconcile (a login between their read of the sessions and their write to the Gate would be undone)."""
    gate = MemoryGate(clock)
    gate.execute(AllowClient("3c:22:fb:00:00:09", "10.77.0.29", T0 + 999))  # a login the table does not show yet
    from portal.app import create_app

    later = create_app({"KELIU": {"database_url": db_url, "var_dir": str(var_dir)}, "GATE": gate, "CLOCK": clock,
                        "SMS": sms, "NEIGHBOURS": neighbours.get})  # built, never started up
    later.extensions["keliu"].engine.dispose()
    assert list(gate.allowed) == ["3c:22:fb:00:00:09"]
    make_app(db_url, var_dir, gate, clock, sms, neighbours)
    assert list(gate.allowed) == []


def test_sweep_ends_idle_and_expired_sessions(app: Flask, phone: Phone, sms: ConsoleSms, gate: MemoryGate,
                                              clock: FakeClock) -> None:
    from portal.store import access

    phone.login(sms)
    clock.advance(3600)
    access.sweep(app.extensions["keliu"], app.extensions["keliu"].now())
    (s,) = rows(app, portal_sessions)
    assert s.end_reason == "idle" and gate.log[-1] == RevokeClient(MAC)


@pytest.mark.parametrize(("body", "ctype", "error", "status"), [
    (b'{"phone": "13812345678"', "application/json", "invalid_json", 400),
    (b"\xff\xfe\x00bad", "application/json", "not_utf8", 400),
    (b'["13812345678"]', "application/json", "invalid_json", 400),
    (b'{"phone": 13812345678}', "application/json", "invalid_field", 400),
    (b'{"phone": "13812345678", "admin": true}', "application/json", "unknown_field", 400),
    (b'{}', "application/json", "missing_field", 400),
    (b"phone=13812345678", "application/x-www-form-urlencoded", "unsupported_media_type", 400),
    (b'{"phone": "' + b"1" * 20000 + b'"}', "application/json", "too_large", 413),
])
def test_bad_bodies_are_clear_4xx(app: Flask, phone: Phone, body: bytes, ctype: str, error: str,
                                  status: int) -> None:
    r = phone.post("/api/login/sms/code", data=body, content_type=ctype)
    assert (r.status_code, r.json["error"]) == (status, error)
    assert rows(app, sms_codes) == []


def test_verify_with_consents_of_the_wrong_shape(phone: Phone, sms: ConsoleSms) -> None:
    api_code(phone)
    for consents_ in ({"terms": "yes"}, {"terms": True, "spam": True}):
        r = phone.post("/api/login/sms/verify", json={"phone": "13812345678", "code": sms.last["+8613812345678"],
                                                      "consents": consents_})
        assert r.status_code == 400


def test_forms_need_csrf(phone: Phone) -> None:
    phone.app.config["WTF_CSRF_ENABLED"] = True
    r = phone.post("/login/sms/code", data={"phone": "13812345678"})
    assert r.status_code == 400


def test_database_errors_do_not_carry_phone_numbers(app: Flask) -> None:
    engine = app.extensions["keliu"].engine
    with pytest.raises(sa.exc.IntegrityError) as err, engine.begin() as conn:
        conn.execute(sa.insert(members).values(phone_e164="+8613812345678", first_store_id="no-such-store",
                                               created_at=datetime.now(UTC),
                                               last_seen_at=datetime.now(UTC)))
    assert "13812345678" not in str(err.value)
