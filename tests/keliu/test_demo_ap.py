"""The demo's guest Wi-Fi: the generated day's joins (pure), and the FAKE hostapd that lists them by the clock."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keliu.demo import STORES, TIMEZONE, ap_schedule, capture_scenario, plan
from keliu.testing.hostapd_fake import scheduled
from keliu.testing.simulate import simulate
from sensor.hostapd import HostapdControl
from sensor.stations import parse_stations


def day() -> tuple[list[dict[str, object]], object, float]:
    sc = capture_scenario(STORES[0])
    _frames, truth = simulate(sc, 7)
    lo = sc.day_start(0)
    return ap_schedule(truth.people, lo, 7), truth, lo


def test_visitors_join_within_their_visits_at_the_modelled_share() -> None:
    """Only visitors join, a minute or more after arriving and at least two minutes before leaving, one
    locally administered address per phone; about a fifth of the visits (``keliu.testing.guestwifi``'s model:
    10 % at 12 minutes to 35 % at two hours); the same day each time."""
    sessions, truth, lo = day()
    visits = {(round(s - lo, 1), round(e - lo, 1)) for p in truth.people if p.kind == "visitor"  # type: ignore[attr-defined]
              for s, e in p.visits if lo <= s < lo + 86400}
    assert 0.10 * len(visits) <= len(sessions) <= 0.35 * len(visits)
    for e in sessions:
        assert any(s + 60 <= e["start"] <= v - 120 and e["end"] == v for s, v in visits), e  # type: ignore[operator]
        first = int(str(e["mac"])[:2], 16)
        assert first & 0x02 and not first & 0x01
    assert sessions == day()[0]


def test_the_fake_ap_lists_the_stations_of_the_time_of_day() -> None:
    """At a time of day, the stations associated then (and a minute after leaving, as hostapd keeps them), with
    their connected time; as keliu's parser reads them."""
    sessions, _truth, lo = day()
    e = sessions[len(sessions) // 2]
    at = lo + float(e["start"]) + 30.0  # type: ignore[arg-type]
    listing = scheduled({"tz": TIMEZONE, "stations": sessions}, now=lambda: at)
    found = [st for text in listing() for st in parse_stations(text)]
    want = [s for s in sessions if s["start"] <= at - lo <= s["end"] + 60]  # type: ignore[operator]
    assert {st.mac for st in found} == {str(s["mac"]) for s in want} and found
    mine = next(st for st in found if st.mac == e["mac"])
    assert mine.associated and mine.connected_time == 30 and mine.signal == e["signal"]
    night = scheduled({"tz": TIMEZONE, "stations": sessions}, now=lambda: lo + 3 * 3600)
    assert night() == []


def test_the_fake_ap_process_answers_keliu_on_its_socket(tmp_path: Path) -> None:
    """``python -m keliu.testing.hostapd_fake`` (the demo's child) serves the schedule on the given socket, as
    ``keliu sensor stations`` reads hostapd; SIGTERM stops it and removes the socket."""
    now = time.time()
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromtimestamp(now, ZoneInfo(TIMEZONE))
    t = local.hour * 3600 + local.minute * 60 + local.second
    schedule = tmp_path / "ap.json"
    schedule.write_text(json.dumps({"tz": TIMEZONE, "stations": [
        {"mac": "5a:1c:7e:20:9b:41", "start": t - 600, "end": t + 600, "signal": -55}]}))
    ctrl = tmp_path / "wlan0"
    proc = subprocess.Popen([sys.executable, "-m", "keliu.testing.hostapd_fake", "--ctrl", str(ctrl),
                             "--schedule", str(schedule)])
    try:
        deadline = time.monotonic() + 20
        while not ctrl.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the fake AP did not start"
            time.sleep(0.1)
        with HostapdControl(ctrl) as ctl:
            (st,) = ctl.stations()
        assert st.mac == "5a:1c:7e:20:9b:41" and 595 <= (st.connected_time or 0) <= 620 and st.associated
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert not ctrl.exists()


def test_the_demo_plan_reads_the_portal_stores_ap(tmp_path: Path) -> None:
    from keliu import config

    cfg = config.build({}, {"KELIU_VAR_DIR": str(tmp_path)})
    ctrl, schedule = tmp_path / "wlan0", tmp_path / "ap.json"
    children = plan(cfg, {"starbucks": tmp_path / "s.pcap"}, ap=("starbucks", ctrl, schedule))
    by = {c.name: c.argv for c in children}
    assert by["ap-fake"][-4:] == ["--ctrl", str(ctrl), "--schedule", str(schedule)]
    assert by["stations-starbucks"][-5:] == ["stations", "--ctrl", str(ctrl), "--store", "starbucks"]
    names = [c.name for c in children]
    assert names.index("ap-fake") < names.index("stations-starbucks")
    assert "ap-fake" not in {c.name for c in plan(cfg, {"starbucks": tmp_path / "s.pcap"})}



def demo_db(tmp_path: Path) -> tuple[Any, Any, Path, list[dict[str, object]], float]:
    """The demo's configuration and database (SQLite) under ``tmp_path``, and the generated day's AP schedule:
    ``(cfg, engine, schedule file, its stations, the day's local midnight)``."""
    import tomllib

    from keliu import config, db, demo, tenants

    sessions, _truth, lo = day()
    schedule = tmp_path / "ap.json"
    schedule.write_text(json.dumps({"tz": TIMEZONE, "stations": sessions}))
    cfg = config.build({**tomllib.loads(demo.demo_toml(str(tmp_path))), "var_dir": str(tmp_path / "var")}, {})
    engine = db.make_engine(cfg.database_url)
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    return cfg, engine, schedule, sessions, lo


def test_the_days_wifi_joins_are_written_as_logins_as_they_fall_due(tmp_path: Path) -> None:
    """Today's joins of the AP's schedule up to now, written as the portal's logins (once each, however often the
    supervisor asks); the analytics read them as the day's Wi-Fi logins and new members (those who opted in to
    marketing, about a third); the device is the keyed hash of the station's address, which is stored nowhere."""
    import sqlalchemy as sa

    from analytics.store import portal_times
    from keliu import demo, keys
    from portal.store.models import logins, members
    from sensor.identity import device_id, mac_bytes

    cfg, engine, schedule, sessions, lo = demo_db(tmp_path)
    by_one = [e for e in sessions if float(e["start"]) <= 13 * 3600]  # type: ignore[arg-type]
    assert 0 < len(by_one) < len(sessions)
    assert demo.load_wifi_logins(engine, cfg, lo + 13 * 3600, schedule) == len(by_one)
    assert demo.load_wifi_logins(engine, cfg, lo + 13 * 3600 + 1, schedule) == 0
    assert demo.load_wifi_logins(engine, cfg, lo + 23 * 3600, schedule) == len(sessions) - len(by_one)
    from datetime import UTC, datetime

    with engine.connect() as conn:
        times, new_members = portal_times(conn, "starbucks", datetime.fromtimestamp(lo, UTC),
                                          datetime.fromtimestamp(lo + 86400, UTC))
        rows = conn.execute(sa.select(logins.c.device_id, logins.c.ts, logins.c.store_id)).all()
        stored = " ".join(str(v) for r in conn.execute(sa.select(members)).all() for v in r)
    assert sorted(t.timestamp() for t in times) == pytest.approx(sorted(lo + float(e["start"]) for e in sessions))  # type: ignore[arg-type]
    assert 0.1 * len(sessions) <= len(new_members) <= 0.7 * len(sessions)
    key = keys.secret_bytes(cfg.var_dir, "device_hmac")
    assert {r.device_id for r in rows} == {device_id(key, mac_bytes(str(e["mac"]))) for e in sessions}
    assert not any(str(e["mac"]) in stored for e in sessions)
    engine.dispose()


def test_the_ap_is_read_from_midnight_as_if_the_demo_had_run_all_day(tmp_path: Path) -> None:
    """Started in the afternoon, the demo reads today's AP from midnight every 10 s as ``keliu sensor stations``
    would have: each 5-minute slot up to now has its poll record, the stations associated by then are connected
    sightings (keyed, basis "connected") and none after; run again, it stores nothing twice."""
    import sqlalchemy as sa

    from keliu import demo
    from sensor.store import sightings, station_polls

    cfg, engine, schedule, sessions, lo = demo_db(tmp_path)
    now = lo + 15 * 3600 + 7
    assert demo.load_ap_today(cfg, now, schedule) == (15 * 3600 + 7) // 10 + 1

    def stored() -> tuple[list[tuple[int, int]], list[float]]:
        with engine.connect() as conn:
            polls = [(int(r.slot), int(r.stations)) for r in conn.execute(
                sa.select(station_polls.c.slot, station_polls.c.stations).order_by(station_polls.c.slot))]
            heard = [float(t) for t in conn.execute(sa.select(sightings.c.ts).where(
                sightings.c.sensor == "sensor-1-ap")).scalars()]
        return polls, heard

    polls, heard = stored()
    assert [slot for slot, _n in polls] == [int(lo) + 300 * k for k in range(15 * 12 + 1)]  # every slot to 15:00
    assert sum(n for _s, n in polls) > 0 and all(n == 0 for slot, n in polls if slot < lo + 10 * 3600)
    joined = [e for e in sessions if float(e["start"]) <= 15 * 3600]  # type: ignore[arg-type]
    assert heard and lo + min(float(e["start"]) for e in joined) <= min(heard) and max(heard) <= now  # type: ignore[arg-type]
    assert demo.load_ap_today(cfg, now, schedule) > 0
    assert stored() == (polls, heard)  # the same sighting ids and slots: nothing twice
    engine.dispose()
