"""The shopper's say over the sensor: consent (c) registers the phone with the sensor, /privacy opts it out, and the
sensor then drops that phone's frames before anything is stored."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from keliu import keys
from portal.edges.sms_backends import ConsoleSms
from portal.store.models import consents
from sensor import consent
from sensor.identity import mac_bytes, member_device_id
from tests.portal.conftest import FakeClock, Phone, csrf_of

MAC = "3c:22:fb:00:00:01"  # the conftest's neighbour of 10.77.0.20


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """SQLite and PostgreSQL: the SMS login stores its rows by different paths on the two."""
    if request.param == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue("migrated_postgres_url"))


def registry(app: Flask) -> dict[str, str]:
    with app.extensions["keliu"].engine.connect() as conn:
        rows = conn.execute(sa.select(consent.registry_table.c.device_id, consent.registry_table.c.kind)).all()
    return {d: k for d, k in rows}


def stable_id(app: Flask, mac: str = MAC) -> str:
    master = keys.secret_bytes(app.extensions["keliu"].cfg.var_dir, "device_hmac")
    return member_device_id(master, mac_bytes(mac))


def choose(phone: Phone, action: str) -> str:
    token = csrf_of(phone.get("/privacy").get_data(as_text=True))
    r = phone.post("/privacy", data={"csrf_token": token, "action": action})
    assert r.status_code == 200, r.get_data(as_text=True)
    return str(r.get_data(as_text=True))


def login(phone: Phone, sms: ConsoleSms, clock: FakeClock, analytics: bool = False) -> None:
    """A login through the JSON API (works whether or not the phone is online), past the resend cooldown."""
    clock.advance(61)
    assert phone.post("/api/login/sms/code", json={"phone": "13812345678"}).status_code == 202
    r = phone.post("/api/login/sms/verify", json={"phone": "13812345678", "code": sms.last["+8613812345678"],
                                                   "consents": {"terms": True, "analytics": analytics}})
    assert r.status_code == 200 and r.json["online"] is True, r.get_data(as_text=True)


def test_analytics_consent_registers_the_phone_and_a_later_login_without_it_withdraws(
        app: Flask, phone: Phone, sms: ConsoleSms, clock: FakeClock) -> None:
    assert phone.login(sms).status_code == 303
    assert registry(app) == {}  # not ticked: counted anonymously like everyone
    login(phone, sms, clock, analytics=True)
    assert registry(app) == {stable_id(app): "member"}
    assert MAC not in str(registry(app)) and MAC.replace(":", "") not in str(registry(app))
    login(phone, sms, clock)
    assert registry(app) == {}


def test_anyone_can_opt_out_without_logging_in_and_undo_it(app: Flask, phone: Phone) -> None:
    page = phone.get("/privacy", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "counted anonymously" in page and 'id="optout"' in page
    html = choose(phone, "optout")
    assert registry(app) == {stable_id(app): "optout"} and 'id="optin"' in html and 'id="notice"' in html
    assert consent.load(app.extensions["keliu"].engine).optouts == frozenset({stable_id(app)})
    choose(phone, "optin")
    assert registry(app) == {}


def test_opt_out_wins_over_a_later_analytics_consent_and_withdraws_the_members(
        app: Flask, phone: Phone, sms: ConsoleSms, clock: FakeClock) -> None:
    assert phone.login(sms, analytics=True).status_code == 303
    assert registry(app) == {stable_id(app): "member"}
    choose(phone, "optout")
    with app.extensions["keliu"].engine.connect() as conn:
        last = conn.execute(sa.select(consents.c.granted).where(consents.c.kind == "analytics")
                            .order_by(consents.c.id.desc()).limit(1)).scalar()
    assert last is False  # the member's consent (c) is withdrawn, as a new versioned row
    login(phone, sms, clock, analytics=True)
    assert registry(app) == {stable_id(app): "optout"}
    login(phone, sms, clock)  # withdrawing analytics consent must not undo the opt-out
    assert registry(app) == {stable_id(app): "optout"}


def test_unknown_action_is_a_clear_error_and_changes_nothing(app: Flask, phone: Phone) -> None:
    token = csrf_of(phone.get("/privacy").get_data(as_text=True))
    r = phone.post("/privacy", data={"csrf_token": token, "action": "delete-everything"})
    assert r.status_code == 400 and registry(app) == {}


def test_splash_links_to_the_privacy_page(phone: Phone) -> None:
    assert 'href="/privacy"' in phone.get("/").get_data(as_text=True)


@pytest.mark.integration
def test_sensor_drops_the_opted_out_phone_before_storing(app: Flask, phone: Phone, neighbours: dict[str, str],
                                                         tmp_path: Path) -> None:
    """The portal's opt-out, read by a real sensor pipeline replaying a capture into the same database."""
    from sensor.replay import replay
    from sensor.sinks import SqlSink
    from tests.sensor.test_pipeline import FakeClock, tcapture, tpipe

    gone = "00:01:02:03:04:00"  # the first phone of tcapture's five
    neighbours["10.77.0.20"] = gone
    choose(phone, "optout")
    engine = app.extensions["keliu"].engine
    master = keys.secret_bytes(app.extensions["keliu"].cfg.var_dir, "device_hmac")
    n = tcapture(tmp_path / "c.pcap")
    clock = FakeClock()
    pipe = tpipe(tmp_path, clock, SqlSink(engine), master=master)
    pipe.registry = lambda: consent.load(engine)
    replay(tmp_path / "c.pcap", pipe, speed=None, clock=clock)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM sightings")).scalar()
    from scapy.layers.dot11 import Dot11
    from scapy.utils import rdpcap

    of_gone = sum(1 for p in rdpcap(str(tmp_path / "c.pcap")) if p.haslayer(Dot11) and p[Dot11].addr2 == gone)
    dropped = pipe.identifier.stats.opted_out
    assert 0 < of_gone < n and dropped == of_gone and stored == n - of_gone
