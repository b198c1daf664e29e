"""A member's rights end to end (PIPL arts. 44–47): one member seeded through every flow this branch has (SMS login
with every consent, WeChat OAuth with the profile and the phone bound by SMS, an official-account follow, the
sensor's registry and sightings by the consented stable id, an open session), exported, then deleted from the member
page; afterwards no text column of any table (found by reflection) holds the phone, the MAC in any spelling, the
device's keyed ids, the openid or the unionid. On SQLite and on PostgreSQL. A second member stays whole."""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from keliu import audit
from keliu.accounts import users
from keliu.testing.wechat_fake import FakeServer, openid_for, unionid_for
from portal.store import rights
from sensor.identity import mac_bytes, member_device_id
from tests.portal.test_wechat_login import (
    ACC,
    OTHER_IP,
    OTHER_MAC,
    PHONE_IP,
    PHONE_MAC,
    Env,
    handoff,
    push,
    start,
    wechat_browser,
)

NUMBER, E164 = "13700137000", "+8613700137000"
OTHER_NUMBER = "13900139000"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def sms_login(env: Env, ip: str, number: str, **consents: str) -> None:
    phone = env.phone(ip)
    assert phone.post("/login/sms/code", data={"phone": number}).status_code == 200
    r = phone.post("/login/sms/verify", data={"phone": number, "code": env.sms.sent[-1][1], "terms": "1", **consents})
    assert r.status_code == 303, r.get_data(as_text=True)


def seed(env: Env, fake: FakeServer) -> dict[str, Any]:
    """The member through every flow; returns what identifies them."""
    svc = env.app.extensions["keliu"]
    sms_login(env, PHONE_IP, NUMBER, marketing="1", analytics="1", reauth="1")
    # WeChat: bob shares his profile (unionid, nickname), then binds the same number by SMS
    client = env.phone("203.0.113.9")
    r = client.post("/wechat/oauth", data={"share": "1", "next": "/wechat/member"})
    import requests

    r2 = requests.get(r.headers["Location"], headers={"User-Agent": "MicroMessenger/8.0"},
                      cookies={"fake_wechat_user": "bob"}, allow_redirects=False, timeout=5)
    _c, resp = wechat_browser(env, fake, r2.headers["Location"][len("http://portal.test"):], client=client, user="bob")
    assert resp.request.path == "/wechat/bind"
    client.post("/wechat/bind", data={"phone": NUMBER, "action": "code"})
    assert client.post("/wechat/bind", data={"phone": NUMBER, "action": "bind",
                                             "code": env.sms.sent[-1][1]}).status_code == 303
    openid = openid_for(ACC.oauth_app_id, "bob")
    assert push(env, "subscribe", openid).status_code == 200
    # the second member, who must stay whole
    sms_login(env, OTHER_IP, OTHER_NUMBER, marketing="1", analytics="1")
    reg = member_device_id(svc.keys.device, mac_bytes(PHONE_MAC))
    other_reg = member_device_id(svc.keys.device, mac_bytes(OTHER_MAC))
    from analytics.store import connected_visits, device_days, visits
    from sensor.store import sightings

    with env.engine.begin() as conn:
        for i, dev in enumerate((reg, other_reg, "0123456789abcdef")):
            conn.execute(sa.insert(sightings).values(sid=f"sid{i}", ts=1.0e9 + i, store="demo-store", sensor="s1",
                                                     device=dev, rssi=-50, freq=2412, seq=1, randomized=False))
            conn.execute(sa.insert(visits).values(store="demo-store", device=dev, start=1.0e9, day=date(2026, 1, 1),
                                                  end=1.0e9 + 60, dwell_s=60.0, staff=False, closed=True))
            conn.execute(sa.insert(device_days).values(store="demo-store", day=date(2026, 1, 1), device=dev, visited=True,
                                                       staff=False, auto_staff=False, loyalty=0, first_seen=1.0e9,
                                                       hours=1))
            conn.execute(sa.insert(connected_visits).values(store="demo-store", day=date(2026, 1, 1), device=dev,
                                                            start=1.0e9, end=1.0e9 + 600, staff=False))
    with env.engine.connect() as conn:
        member_id = rights.find(conn, E164)
        assert member_id is not None
        row = rights.member_row(conn, member_id)
        unionid = unionid_for(ACC.open_platform, "bob")
        ident = conn.execute(sa.text("SELECT member_id, unionid FROM wechat_identities WHERE openid = :o"),
                             {"o": openid}).one()
        assert ident.member_id == member_id and ident.unionid == unionid
        assert rights.registry_ids(conn, member_id) == [reg]
        assert rights.open_sessions(conn, member_id)
    assert row.phone_e164 == E164
    mac = PHONE_MAC.lower()
    bare = mac.replace(":", "")
    return {"member_id": member_id, "needles": {
        "phone": [E164, NUMBER], "mac": [mac, mac.upper(), bare, bare.upper(), mac.replace(":", "-")],
        "device": [svc.device_of(PHONE_MAC)], "registry": [reg], "openid": [openid], "unionid": [unionid]},
        "other_reg": other_reg}


def text_hits(engine: sa.Engine, needles: dict[str, list[str]]) -> list[str]:
    """Every (table, column, what) where a text column of any table holds a needle."""
    md = sa.MetaData()
    md.reflect(engine)
    hits = []
    with engine.connect() as conn:
        for t in md.sorted_tables:
            cols = [c for c in t.columns if isinstance(c.type, (sa.String, sa.Text))]
            for row in conn.execute(sa.select(*cols)) if cols else []:
                for c, v in zip(cols, row, strict=True):
                    for what, values in needles.items():
                        if v is not None and any(n in str(v) for n in values):
                            hits.append(f"{t.name}.{c.name}: {what}")
    return sorted(set(hits))


def run_erasure(env: Env, fake: FakeServer) -> None:
    seeded = seed(env, fake)
    mid, needles = seeded["member_id"], seeded["needles"]
    before = text_hits(env.engine, needles)
    # the seeding reached every place the scan must then find empty (the scan can fail)
    for place in ("members.phone_e164: phone", "devices.device_id: device", "logins.device_id: device",
                  "portal_sessions.device_id: device", "sensor_device_registry.device_id: registry",
                  "sightings.device: registry", "visits.device: registry", "device_days.device: registry",
                  "connected_visits.device: registry", "member_registry.registry_id: registry", "wechat_identities.openid: openid",
                  "wechat_identities.unionid: unionid", "wechat_follows.openid: openid",
                  "sms_codes.device_id: device"):
        assert place in before, (place, before)
    # an admin looks and exports first: the audit trail holds ids, never the phone
    users.create_user(env.engine, "ops", "pw-ops-1", "admin")
    admin = env.app.test_client()
    from tests.portal.conftest import AuthActions

    assert AuthActions(admin).login("ops", "pw-ops-1").status_code == 302
    assert admin.get(f"/admin/members/{mid}").status_code == 200
    exported = admin.get(f"/admin/members/{mid}/export.json")
    data = json.loads(exported.get_data(as_text=True))
    assert data["member"]["phone"] == E164 and data["consents_now"]["analytics"] is True
    assert [r["registry_id"] for r in data["sensor_registry"]] == needles["registry"]
    assert data["wechat"]["identities"][0]["nickname"] == "bob (FAKE)"
    assert {s["ip"] for s in data["sessions"]} == {PHONE_IP}
    # the member deletes the account from their page (online: their session ends, the Gate lets the phone go)
    member = env.phone(PHONE_IP)
    with member.session_transaction() as s:
        s["member_id"] = mid
    assert member.post("/member/data/delete", data={}).status_code == 400  # no confirmation: nothing deleted
    with env.engine.connect() as conn:
        assert rights.find(conn, E164) == mid
    r = member.post("/member/data/delete", data={"confirm": "1"})
    assert r.status_code == 200 and 'id="message"' in r.get_data(as_text=True)
    assert PHONE_MAC not in env.gate.allowed and OTHER_MAC in env.gate.allowed
    left = text_hits(env.engine, needles)
    # the one exception the law makes: the access log keeps the phone and the MAC until its retention ends
    # (docs/PRIVACY.md), and nothing else does
    assert [h for h in left if not h.startswith("access_log.")] == []
    assert {"access_log.phone: phone", "access_log.mac: mac"} <= set(left)
    with member.session_transaction() as s:
        assert "member_id" not in s
    assert member.get("/member/data").status_code == 401
    # the other member is whole, the anonymous sighting too, and the deletion is on record
    with env.engine.connect() as conn:
        other = rights.find(conn, "+86" + OTHER_NUMBER)
        assert other is not None
        assert rights.registry_ids(conn, other) == [seeded["other_reg"]]
        devs = set(conn.execute(sa.text("SELECT device FROM sightings")).scalars())
        assert devs == {seeded["other_reg"], "0123456789abcdef"}
        assert conn.execute(sa.text("SELECT count(*) FROM logins WHERE member_id = :m"), {"m": other}).scalar() == 1
    actions = [(e.action, e.target) for e in audit.entries(env.engine)]
    assert actions[:3] == [("member.delete", f"member:{mid}"), ("member.export", f"member:{mid}"),
                           ("member.view", f"member:{mid}")]


def test_deletion_leaves_nothing_identifying_on_sqlite(tmp_path: Path, fake: FakeServer) -> None:
    run_erasure(Env(tmp_path, fake), fake)


@pytest.mark.integration
def test_deletion_leaves_nothing_identifying_on_postgresql(tmp_path: Path, fake: FakeServer,
                                                           migrated_postgres_url: str) -> None:
    env = Env(tmp_path, fake, db_url=migrated_postgres_url)
    try:
        run_erasure(env, fake)
    finally:
        env.engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_a_wechat_wifi_member_without_a_phone_is_deleted_by_an_admin(tmp_path: Path, fake: FakeServer,
                                                                     database: str, request: Any) -> None:
    """微信连Wi-Fi makes a member keyed by the openid (no phone); the admin deletes them by number."""
    url = request.getfixturevalue("migrated_postgres_url") if database == "postgresql" else None
    env = Env(tmp_path, fake, db_url=url)
    try:
        svc = env.app.extensions["keliu"]
        assert env.phone().get(handoff(fake, start(env, analytics="1", reauth="1"))).status_code == 200
        openid = openid_for(ACC.wifi_app_id, PHONE_MAC)
        assert push(env, "subscribe", openid).status_code == 200
        with env.engine.connect() as conn:
            mid = conn.execute(sa.text("SELECT id FROM members WHERE wechat_openid = :o"), {"o": openid}).scalar()
        reg = member_device_id(svc.keys.device, mac_bytes(PHONE_MAC))
        needles = {"openid": [openid], "device": [svc.device_of(PHONE_MAC)], "registry": [reg],
                   "mac": [PHONE_MAC, PHONE_MAC.replace(":", "")]}
        before = text_hits(env.engine, needles)
        assert {"members.wechat_openid: openid", "wechat_follows.openid: openid", "wechat_releases.device_key: device",
                "sensor_device_registry.device_id: registry"} <= set(before), before
        users.create_user(env.engine, "ops", "pw-ops-1", "admin")
        admin = env.app.test_client()
        from tests.portal.conftest import AuthActions

        AuthActions(admin).login("ops", "pw-ops-1")
        assert admin.post(f"/admin/members/{mid}/delete", data={"confirm": str(mid)}).status_code == 303
        left = text_hits(env.engine, needles)  # the access log keeps the account and the MAC (the law), nothing else
        assert [h for h in left if not h.startswith("access_log.")] == [] and env.gate.allowed == {}
        assert {"access_log.account: openid", "access_log.mac: mac"} <= set(left)
    finally:
        env.engine.dispose()
