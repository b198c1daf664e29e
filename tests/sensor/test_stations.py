"""The AP's own stations: hostapd's station text → Station (table tests), → keyed sightings of basis "connected",
and the control-interface client against a fake hostapd speaking its datagram protocol on a unix socket."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from keliu.testing.hostapd_fake import LAPTOP, PHONE, fake_hostapd
from sensor.errors import StationsUnavailable
from sensor.hostapd import HostapdControl, poll
from sensor.identity import PrivacyPolicy, Registry, device_id, member_device_id, period_key, sid_key
from sensor.stations import Station, parse_stations, station_sightings
from tests.conftest import ROOT, require, require_tool

JOINING = """\
ae:44:10:02:c3:9f
flags=[AUTH]
aid=0
capability=0x0
listen_interval=0
supported_rates=
timeout_next=NULLFUNC POLL
"""
NO_DRIVER_DATA = """\
02:11:22:33:44:55
flags=[AUTH][ASSOC][AUTHORIZED]
aid=3
capability=0x0
listen_interval=5
supported_rates=0c 18 30
timeout_next=NULLFUNC POLL
connected_time=7
"""
ZERO_SIGNAL = PHONE.replace("5a:1c:7e:20:9b:41", "5A:1C:7E:20:9B:42").replace("signal=-52", "signal=0") \
    .replace("connected_time=312", "connected_time=abc")


def st(mac: str, flags: str, signal: int | None, connected: int | None, inactive: int | None) -> Station:
    return Station(mac, frozenset(flags.split()), signal, connected, inactive)


P = st("5a:1c:7e:20:9b:41", "AUTH ASSOC AUTHORIZED SHORT_PREAMBLE WMM HT", -52, 312, 840)
L = st("00:1e:c2:aa:bb:03", "AUTH ASSOC AUTHORIZED WMM", -71, 4021, 95000)
J = st("ae:44:10:02:c3:9f", "AUTH", None, None, None)
N = st("02:11:22:33:44:55", "AUTH ASSOC AUTHORIZED", None, 7, None)
Z = st("5a:1c:7e:20:9b:42", "AUTH ASSOC AUTHORIZED SHORT_PREAMBLE WMM HT", None, None, 840)

CASES = [
    ("one station (STA-FIRST)", PHONE, [P]),
    ("hostapd_cli all_sta with its banner", "Selected interface 'wlan0'\n" + PHONE + LAPTOP + JOINING, [P, L, J]),
    ("a driver without tx/rx data", NO_DRIVER_DATA, [N]),
    ("signal 0 is no signal; a bad number is None; upper-case address", ZERO_SIGNAL, [Z]),
    ("no station (STA-FIRST's empty answer)", "", []),
    ("FAIL (STA-NEXT of a station gone)", "FAIL\n", []),
    ("CRLF line ends", PHONE.replace("\n", "\r\n"), [P]),
]


@pytest.mark.parametrize(("case", "text", "want"), CASES, ids=[c[0] for c in CASES])
def test_parse_stations(case: str, text: str, want: list[Station]) -> None:
    assert parse_stations(text) == want, case


MASTER = bytes(range(32))
POLICY = PrivacyPolicy(utc_offset_s=8 * 3600)
NOW = 1_767_600_000.0


def test_associated_stations_become_keyed_sightings_of_basis_connected() -> None:
    found = parse_stations(PHONE + LAPTOP + JOINING + NO_DRIVER_DATA)
    out = station_sightings(found, NOW, "s1", "sensor-1-ap", MASTER, POLICY, sid_key(MASTER), freq=2437)
    key = period_key(MASTER, POLICY.period(NOW))
    # the laptop was silent for 95 s (out of range), the joining phone is not associated
    assert [(s.device, s.rssi, s.freq, s.seq, s.randomized, s.basis, s.ts, s.store, s.sensor) for s in out] == [
        (device_id(key, bytes.fromhex("5a1c7e209b41")), -52, 2437, None, True, "connected", NOW, "s1", "sensor-1-ap"),
        (device_id(key, bytes.fromhex("021122334455")), None, 2437, None, True, "connected", NOW, "s1", "sensor-1-ap")]
    text = repr(out).lower()
    for mac in ("5a:1c:7e:20:9b:41", "5a1c7e209b41", "02:11:22:33:44:55", "021122334455"):
        assert mac not in text  # never the raw MAC, in any spelling
    again = station_sightings(found, NOW, "s1", "sensor-1-ap", MASTER, POLICY, sid_key(MASTER), freq=2437)
    assert [s.sid for s in again] == [s.sid for s in out]  # a re-delivered poll is stored once
    later = station_sightings(found, NOW + 10, "s1", "sensor-1-ap", MASTER, POLICY, sid_key(MASTER))
    assert {s.sid for s in later}.isdisjoint(s.sid for s in out) and [s.device for s in later] == [
        s.device for s in out]  # the same phones, a new sighting each poll
    tomorrow = station_sightings(found, NOW + 86400, "s1", "sensor-1-ap", MASTER, POLICY, sid_key(MASTER))
    assert tomorrow[0].device != out[0].device  # strict privacy: the day's key rotates, as the sensor's ids do


def test_opt_outs_members_and_ignored_macs_are_honoured() -> None:
    found = parse_stations(PHONE + NO_DRIVER_DATA + ZERO_SIGNAL)
    member = member_device_id(MASTER, bytes.fromhex("5a1c7e209b41"))
    optout = member_device_id(MASTER, bytes.fromhex("021122334455"))
    out = station_sightings(found, NOW, "s1", "ap", MASTER, POLICY, sid_key(MASTER),
                            registry=Registry(members=frozenset({member}), optouts=frozenset({optout})),
                            ignore=frozenset({"5a:1c:7e:20:9b:42"}))
    assert [s.device for s in out] == [member]


# --- the control interface ----------------------------------------------------------------------------------


def test_the_client_walks_the_station_list() -> None:
    with fake_hostapd([PHONE, LAPTOP, JOINING]) as (path, got), HostapdControl(path) as ctl:
        assert ctl.stations() == [P, L, J]
        assert ctl.freq() == 2437
    assert got == ["STA-FIRST", "STA-NEXT 5a:1c:7e:20:9b:41", "STA-NEXT 00:1e:c2:aa:bb:03",
                   "STA-NEXT ae:44:10:02:c3:9f", "STATUS"]
    with fake_hostapd([]) as (path, _got), HostapdControl(path) as ctl:
        assert ctl.stations() == []


#: run in a mount namespace whose /tmp is a new tmpfs (what systemd's PrivateTmp= gives keliu-stations.service):
#: keliu's client, then a client bound to a file in that /tmp, against the fake hostapd outside it (argv: socket)
PRIVATE_TMP_CLIENTS = """
import socket, sys
from sensor.hostapd import HostapdControl
with HostapdControl(sys.argv[1]) as ctl:
    print("keliu", len(ctl.stations()))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/tmp/client")
s.settimeout(1.0)
s.connect(sys.argv[1])
s.send(b"STA-FIRST")
try:
    s.recv(4096)
    print("file answered")
except TimeoutError:
    print("file silent")
"""


@pytest.mark.integration
def test_a_client_with_a_private_tmp_gets_hostapds_answers() -> None:
    """hostapd resolves the client's address in its own mount namespace: keliu's client (an abstract address) is
    answered from inside a private /tmp; a client bound to a file there is not (the control: the namespace is
    real, and it is what would silence a file-bound client under PrivateTmp=)."""
    unshare = require_tool("unshare")
    require(os.geteuid() == 0 and os.path.isdir("/dev/shm"), "a mount namespace needs root (and /dev/shm)")
    # the fake's socket outside /tmp, so that the client in the namespace can reach it
    with fake_hostapd([PHONE, LAPTOP], where="/dev/shm") as (path, got):
        out = subprocess.run(
            [unshare, "--mount", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs tmpfs /tmp && exec "$0" -c "$1" "$2"', sys.executable, PRIVATE_TMP_CLIENTS, path],
            check=False, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["keliu 2", "file silent"], out.stdout + out.stderr
    assert got[:3] == ["STA-FIRST", "STA-NEXT 5a:1c:7e:20:9b:41", "STA-NEXT 00:1e:c2:aa:bb:03"]


def test_a_missing_or_silent_hostapd_is_a_clear_error_and_polling_goes_on(tmp_path: Path) -> None:
    with pytest.raises(StationsUnavailable, match="nosuch"):
        HostapdControl(tmp_path / "nosuch")
    with fake_hostapd([PHONE], silent=True) as (path, _got), HostapdControl(path, timeout=0.3) as ctl, \
            pytest.raises(StationsUnavailable, match="did not answer STA-FIRST"):
        ctl.stations()
    seen: list[int] = []
    n = poll(tmp_path / "nosuch", lambda found, f, now: seen.append(len(found)), interval=1.0, clock=lambda: 0.0,
             sleep=lambda s: None, rounds=3)
    assert (n, seen) == (0, [])
    with fake_hostapd([PHONE, NO_DRIVER_DATA], freq=5180) as (path, _got):
        calls: list[tuple[list[Station], int | None, float]] = []
        clock = iter([100.0, 100.1, 110.0, 110.1])
        n = poll(path, lambda found, f, now: calls.append((found, f, now)), interval=10.0,
                 clock=lambda: next(clock), sleep=lambda s: None, rounds=2)
    assert n == 2 and [(c[1], c[2], len(c[0])) for c in calls] == [(5180, 100.0, 2), (5180, 110.0, 2)]


def test_the_cli_stores_connected_stations_through_the_sensor_sink(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from sensor.cli import sensor

    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KELIU_DATABASE_URL", f"sqlite:///{tmp_path / 'k.db'}")
    with fake_hostapd([PHONE, LAPTOP, NO_DRIVER_DATA]) as (path, _got):
        res = CliRunner().invoke(sensor, ["stations", "--ctrl", path, "--once"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "1 reads" in res.output and "2 station sightings" in res.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'k.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT store, sensor, device, rssi, freq, basis FROM sightings")).all()
        dump = " ".join(str(r) for r in conn.execute(sa.text("SELECT * FROM sightings")).all()).lower()
        polls = conn.execute(sa.text("SELECT sensor, slot, first, last, stations FROM station_polls")).all()
    engine.dispose()
    # the read itself is recorded, with how many stations were associated (the list heard; no device)
    ((who, slot, first, last, n),) = polls
    assert (who, n, first == last, slot <= first < slot + 300, slot % 300) == ("sensor-1-ap", 3, True, True, 0)
    assert sorted(((r[1], r[3], r[4], r[5]) for r in rows), key=str) == [("sensor-1-ap", -52, 2437, "connected"),
                                                                         ("sensor-1-ap", None, 2437, "connected")]
    assert all(len(r[2]) == 16 for r in rows)
    assert "5a:1c:7e" not in dump and "5a1c7e" not in dump and "021122" not in dump
    res = CliRunner().invoke(sensor, ["stations", "--ctrl", str(tmp_path / "gone"), "--once"])
    assert res.exit_code != 0 and "could not be read" in res.output


# -- the record of each poll: the list heard, by 5-minute slot, no device

def test_a_poll_is_recorded_in_its_5_minute_slot() -> None:
    from sensor.records import StationPoll
    from sensor.stations import poll_record

    assert poll_record("s1", "sensor-1-ap", 1_800_000_299.5, 3) == StationPoll("s1", "sensor-1-ap", 1_800_000_000,
                                                                              1_800_000_299.5, 1_800_000_299.5, 3)
    with pytest.raises(ValueError, match="-1 stations"):
        poll_record("s1", "sensor-1-ap", 1_800_000_000.0, -1)


def test_polls_merge_by_slot_in_any_order_and_twice_is_once() -> None:
    import itertools

    from sensor.records import StationPoll
    from sensor.stations import merge_polls, poll_record

    polls = [poll_record("s1", "ap", t, n) for t, n in [(1000.0, 2), (1010.0, 5), (1190.0, 0), (1200.0, 1)]]
    polls.append(poll_record("s2", "ap", 1010.0, 4))
    want = [StationPoll("s1", "ap", 900, 1000.0, 1190.0, 5), StationPoll("s1", "ap", 1200, 1200.0, 1200.0, 1),
            StationPoll("s2", "ap", 900, 1010.0, 1010.0, 4)]
    for order in itertools.permutations(polls):
        assert merge_polls(order) == want
    assert merge_polls(want + polls) == want  # merging merged records again changes nothing
    assert merge_polls([]) == []


def test_poll_records_travel_as_dicts_and_bad_ones_are_named() -> None:
    from sensor.stations import poll_from_dict, poll_record, poll_to_dict

    p = poll_record("s1", "ap", 1010.0, 2)
    assert poll_from_dict(poll_to_dict(p)) == p
    with pytest.raises(ValueError, match="fields"):
        poll_from_dict({**poll_to_dict(p), "device": "x"})  # nothing that names a device rides along
    with pytest.raises(ValueError, match="out of its slot"):
        poll_from_dict({**poll_to_dict(p), "slot": 600})
    with pytest.raises(ValueError, match="out of its slot"):
        poll_from_dict({**poll_to_dict(p), "stations": -2})
