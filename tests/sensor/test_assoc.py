"""Association and reassociation requests: parsed, filtered by the kernel filter, identified and stored like probes.

A phone that joins a network sends an association request (management subtype 0; 2, a reassociation request, when
it moves within the network) from the address it keeps for that network. The sensor counts it as a sighting of its
keyed device, ``kind`` "assoc" / "reassoc" (docs/SENSOR.md).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from keliu import db
from sensor.capture import BPF
from sensor.cli import sensor
from sensor.frames import KIND_ASSOC, KIND_PROBE, KIND_REASSOC, Parser, Probe, ProbeBatch
from sensor.grouping import Identifier
from sensor.identity import (
    PrivacyPolicy,
    Registry,
    device_id,
    mac_bytes,
    member_device_id,
    period_key,
    sid_key,
)
from sensor.pcap import records
from sensor.sightings import StationKey, from_dict, sightings, to_dict
from sensor.stations import Station, station_device, station_sightings
from sensor.store import insert_sightings
from sensor.store import sightings as sightings_table
from tests.conftest import require_tool
from tests.sensor.sensorkit import (
    AP,
    IES,
    PCAP_HEADER,
    hand_mgmt,
    hand_rt,
    tassoc,
    tframe,
    tshark_rows,
    write_records,
)

T0 = 1_767_600_000.0
MASTER = bytes(range(32))
PHONE = "da:a1:19:5e:7c:03"  # a per-network address: locally administered
SSID = "免费WiFi".encode()
CAP_LISTEN = struct.pack("<HH", 0x0421, 10)  # capability (ESS, short preamble, spectrum mgmt), listen interval 10
ELEMENTS = bytes([0, len(SSID)]) + SSID + IES


def pcap(frames: list[bytes], t0: float = T0) -> bytes:
    return PCAP_HEADER + b"".join(struct.pack("<IIII", int(t0) + i, 0, len(f), len(f)) + f
                                  for i, f in enumerate(frames))


def parse_both(buf: bytes) -> tuple[list[object], object, list[object], object]:
    """The per-frame reference and the batch path over one capture."""
    ref = Parser()
    a = [x for ts, s, e, lt in records(buf) if (x := ref.parse_frame(buf, s, e, ts, lt)) is not None]
    bat = Parser()
    b = [x for batch in bat.batches(buf, size=5) for x in batch.probes()]
    return a, ref.stats, b, bat.stats


# ---------------------------------------------------------------------------------------------------------------
# the parser: frames written out by hand

#: (name, first frame-control octet, body, expected kind or None for "skipped as another frame", or "malformed")
TABLE: list[tuple[str, int, bytes, int | str | None]] = [
    ("probe request", 0x40, ELEMENTS, KIND_PROBE),
    ("association request", 0x00, CAP_LISTEN + ELEMENTS, KIND_ASSOC),
    ("reassociation request", 0x20, CAP_LISTEN + bytes.fromhex("000c29aabb01") + ELEMENTS, KIND_REASSOC),
    ("association request, wildcard-length SSID", 0x00, CAP_LISTEN + b"\x00\x00" + IES, KIND_ASSOC),
    ("association response", 0x10, struct.pack("<HHH", 0x0421, 0, 0xC001) + IES, None),
    ("reassociation response", 0x30, struct.pack("<HHH", 0x0421, 0, 0xC001) + IES, None),
    ("beacon", 0x80, bytes(8) + struct.pack("<HH", 100, 0x0421) + ELEMENTS, None),
    ("authentication", 0xB0, struct.pack("<HHH", 0, 1, 0), None),
    ("disassociation", 0xA0, struct.pack("<H", 8), None),
    ("association request cut inside its fixed fields", 0x00, CAP_LISTEN[:3], "malformed"),
    ("reassociation request without its current AP", 0x20, CAP_LISTEN + ELEMENTS[:4], "malformed"),
    ("association request whose first element is not the SSID", 0x00, CAP_LISTEN + IES, "malformed"),
    ("association request, SSID element longer than the frame", 0x00, CAP_LISTEN + b"\x00\x20abc", "malformed"),
    ("association request, a truncated element after the SSID", 0x00, CAP_LISTEN + ELEMENTS + b"\x2d\x1a\x00",
     "malformed"),
]


@pytest.mark.parametrize(("name", "fc0", "body", "want"), TABLE, ids=[t[0] for t in TABLE])
def test_the_parser_reads_association_requests_and_skips_other_management_frames(
        name: str, fc0: int, body: bytes, want: int | str | None) -> None:
    frame = hand_rt(signal=-48) + hand_mgmt(fc0, PHONE, 1234, body)
    a, ref_stats, b, batch_stats = parse_both(pcap([frame]))
    assert a == b and ref_stats == batch_stats, name
    st = ref_stats
    assert st.frames == 1  # type: ignore[attr-defined]
    if want is None:
        assert (a, st.not_probe) == ([], 1)  # type: ignore[attr-defined]
    elif want == "malformed":
        assert (a, st.malformed) == ([], 1)  # type: ignore[attr-defined]
    else:
        (p,) = a
        assert (p.kind, p.mac.hex(":"), p.seq, p.rssi, p.freq) == (want, PHONE, 1234, -48, 2437)  # type: ignore[attr-defined]
        assert p.ssid == (b"" if "wildcard" in name else SSID)  # type: ignore[attr-defined]
        assert (st.probes, st.assocs) == ((1, 0) if want == KIND_PROBE else (0, 1))  # type: ignore[attr-defined]


def test_golden_association_request_bytes() -> None:
    """An association request as it is on the air (radiotap, header, capability 0x0421, listen interval 10, SSID
    "免费WiFi", rates), written down once: the parser must read these exact bytes."""
    golden = bytes.fromhex(
        "00000f002a00000000008509a000c9"  # radiotap: flags, channel 2437 MHz, -55 dBm
        "0000" "3a01" "000c29aabb01" "daa1195e7c03" "000c29aabb01" "7004"  # fc, duration, DA, SA, BSSID, seq 71
        "2104" "0a00"  # capability, listen interval
        "000ae5858de8b4b957694669"  # SSID 免费WiFi
        "010882848b960c121824")  # supported rates
    (p,) = list(Parser().parse_capture(pcap([golden])))
    assert (p.kind, p.mac.hex(":"), p.seq, p.rssi, p.freq, p.ssid) == (KIND_ASSOC, PHONE, 71, -55, 2437, SSID)
    # the fingerprint is the elements after the SSID, as for a probe request
    same = hand_rt() + hand_mgmt(0x40, PHONE, 72, bytes.fromhex("0000010882848b960c121824"))
    (q,) = list(Parser().parse_capture(pcap([same])))
    assert q.fingerprint == p.fingerprint and q.kind == KIND_PROBE


def test_fcs_and_radiotap_variants_of_association_requests_on_both_paths() -> None:
    frames = [tassoc(PHONE, 10 + i, rt=rt, fcs=fcs, reassoc=bool(i % 2))
              for i, (rt, fcs) in enumerate([("basic", False), ("basic", True), ("tsft", True), ("ext", False),
                                             ("ext", True), ("vendor", False), ("nosignal", False)])]
    bad = bytearray(tassoc(PHONE, 99, fcs=True))
    bad[-1] ^= 0xFF  # a wrong FCS: dropped, as for a probe
    a, ref_stats, b, batch_stats = parse_both(pcap([*frames, bytes(bad)]))
    assert a == b and ref_stats == batch_stats
    assert [p.kind for p in a] == [KIND_ASSOC, KIND_REASSOC] * 3 + [KIND_ASSOC]  # type: ignore[attr-defined]
    assert [p.seq for p in a] == list(range(10, 17))  # type: ignore[attr-defined]
    assert (ref_stats.assocs, ref_stats.bad_fcs, ref_stats.probes) == (7, 1, 0)  # type: ignore[attr-defined]


def test_a_batch_of_probes_costs_no_kind_column() -> None:
    (batch,) = list(Parser().batches(pcap([tframe("basic", PHONE, i) for i in range(3)])))
    assert batch.kind is None and [batch.kind_of(i) for i in range(3)] == [KIND_PROBE] * 3
    mixed = list(Parser().batches(pcap([tframe("basic", PHONE, 1), tassoc(PHONE, 2), tframe("basic", PHONE, 3)])))
    assert mixed[0].kind is not None and mixed[0].kind.tolist() == [KIND_PROBE, KIND_ASSOC, KIND_PROBE]
    assert [p.kind for p in ProbeBatch.from_probes(list(mixed[0].probes())).probes()] == [0, 1, 0]
    assert mixed[0].slice(1, 2).kind_of(0) == KIND_ASSOC and mixed[0].shifted(5.0).kind_of(1) == KIND_ASSOC


# ---------------------------------------------------------------------------------------------------------------
# tshark, the oracle: the same frames, the same fields, the same kinds

def test_association_requests_agree_with_tshark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tshark = require_tool("tshark")
    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    recs = [
        (T0, tframe("basic", "02:00:5e:10:00:01", 100, ssid=SSID)),
        (T0 + 0.5, tassoc(PHONE, 101, fcs=True, signal=-41)),
        (T0 + 1.0, tassoc(PHONE, 102, reassoc=True, rt="tsft", freq=5180, signal=-63)),
        (T0 + 1.5, tassoc("00:1b:2c:3d:4e:5f", 7, ssid=b"CMCC-WEB", rt="ext")),
        (T0 + 2.0, tframe("basic", AP, 8, subtype=1)),  # association response: not counted
        (T0 + 2.5, tframe("basic", AP, 9, subtype=8)),  # beacon
        (T0 + 3.0, tframe("basic", PHONE, 10, subtype=11)),  # authentication
    ]
    path = write_records(tmp_path / "assoc.pcap", recs)
    ref = tshark_rows(tshark, path, "0,2,4")
    kinds = subprocess_kinds(tshark, path)
    assert len(ref) == 4 and kinds == [4, 0, 2, 0]
    res = CliRunner().invoke(sensor, ["parse", str(path), "--show-mac"], catch_exceptions=False)
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(ref)
    for ours, (ts, sa_, sig, seq, ssid), subtype in zip(rows, ref, kinds):
        assert (ours["mac"], ours["rssi"], ours["seq"]) == (sa_, sig, seq)
        assert ours["kind"] == {4: "probe", 0: "assoc", 2: "reassoc"}[subtype]
        assert ssid in (ours["ssid"], ours["ssid"].encode().hex(), ":".join(f"{c:02x}" for c in ours["ssid"].encode()))
    assert [r["freq"] for r in rows] == [2437, 2437, 5180, 2437]
    assert "1 probe requests, 3 association requests, 7 frames, 3 other frames" in res.stderr


def subprocess_kinds(tshark: str, path: Path) -> list[int]:
    import subprocess

    out = subprocess.run([tshark, "-r", str(path), "-Y", "wlan.fc.type_subtype in {0,2,4}", "-T", "fields", "-e",
                          "wlan.fc.type_subtype", "-o", "wlan.check_checksum:TRUE"], capture_output=True, text=True,
                         check=True).stdout
    return [int(x, 0) for x in out.split()]


# ---------------------------------------------------------------------------------------------------------------
# the kernel filter of the live capture, compiled by libpcap as scapy compiles it for the socket

class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("ts_sec", ctypes.c_long), ("ts_usec", ctypes.c_long), ("caplen", ctypes.c_uint32),
                ("len", ctypes.c_uint32)]


def bpf_matches(frames: list[bytes]) -> list[bool]:
    name = ctypes.util.find_library("pcap")
    if name is None:
        pytest.skip("libpcap is not installed (it compiles the live capture's filter)")
    lib = ctypes.CDLL(name)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_uint32]
    lib.pcap_offline_filter.argtypes = [ctypes.POINTER(_BpfProgram), ctypes.POINTER(_PktHdr), ctypes.c_char_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    handle = lib.pcap_open_dead(127, 65535)  # DLT_IEEE802_11_RADIO: what a monitor interface delivers
    prog = _BpfProgram()
    assert lib.pcap_compile(handle, ctypes.byref(prog), BPF.encode(), 1, 0xFFFFFFFF) == 0
    try:
        return [lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(_PktHdr(0, 0, len(f), len(f))), f) != 0
                for f in frames]
    finally:
        lib.pcap_freecode(ctypes.byref(prog))
        lib.pcap_close(handle)


def test_the_kernel_filter_passes_probe_and_association_requests_only() -> None:
    frames = {
        "probe request": tframe("basic", PHONE, 1, ssid=SSID),
        "association request": tassoc(PHONE, 2),
        "reassociation request": tassoc(PHONE, 3, reassoc=True, rt="tsft", fcs=True),
        "association response": tframe("basic", AP, 4, subtype=1),
        "reassociation response": tframe("basic", AP, 5, subtype=3),
        "probe response": tframe("basic", AP, 6, subtype=5),
        "beacon": tframe("basic", AP, 7, subtype=8),
        "authentication": tframe("ext", PHONE, 8, subtype=11),
    }
    got = dict(zip(frames, bpf_matches(list(frames.values()))))
    assert got == {name: name in ("probe request", "association request", "reassociation request")
                   for name in frames}
    # a data frame from the associated phone: not management, not passed
    data = hand_rt() + struct.pack("<BBH", 0x08, 0x01, 0) + bytes(18) + struct.pack("<H", 0) + bytes(8)
    assert bpf_matches([data]) == [False]


# ---------------------------------------------------------------------------------------------------------------
# identity: the association's address is the device, keyed; members and opt-outs apply

def key_for(ts: float) -> bytes:
    return period_key(MASTER, PrivacyPolicy().period(ts))


def batch_of(frames: list[tuple[float, bytes]]) -> ProbeBatch:
    (batch,) = list(Parser().batches(PCAP_HEADER + b"".join(
        struct.pack("<IIII", int(ts), round((ts - int(ts)) * 1e6), len(f), len(f)) + f for ts, f in frames)))
    return batch


def test_an_association_is_a_sighting_of_the_keyed_device_of_its_address() -> None:
    mac = bytes.fromhex(PHONE.replace(":", ""))
    # the phone scans from rotating addresses, then associates from its per-network one, then probes from it
    frames = [(T0 + i * 0.2, tframe("basic", f"06:00:00:00:00:{i:02x}", 500 + i, ssid=SSID)) for i in range(3)]
    frames += [(T0 + 1.0, tassoc(PHONE, 20)), (T0 + 30.0, tframe("basic", PHONE, 21, ssid=SSID)),
               (T0 + 40.0, tassoc(PHONE, 22, reassoc=True))]
    batch = batch_of(frames)
    devices = Identifier(MASTER).identify_batch(batch)
    phone = device_id(key_for(T0), mac)
    assert devices[3:].tolist() == [phone] * 3  # the address is its own device, never linked to a probing group
    assert phone not in devices[:3].tolist()
    out = sightings(batch, devices, "store-1", "sensor-1", sid_key(MASTER))
    assert [(s.kind, s.device, s.randomized) for s in out[3:]] == [
        ("assoc", phone, True), ("probe", phone, True), ("reassoc", phone, True)]
    assert {s.kind for s in out[:3]} == {"probe"}
    assert all(mac.hex() not in repr(s) and PHONE not in repr(s) for s in out)  # no raw MAC in a sighting


def test_an_association_from_a_global_address_and_from_a_member_or_an_opted_out_phone() -> None:
    member, optout, plain = "da:00:00:00:00:01", "da:00:00:00:00:02", "00:1b:2c:3d:4e:5f"
    mb = {m: bytes.fromhex(m.replace(":", "")) for m in (member, optout, plain)}
    reg = Registry(members=frozenset({member_device_id(MASTER, mb[member])}),
                   optouts=frozenset({member_device_id(MASTER, mb[optout])}))
    batch = batch_of([(T0, tassoc(member, 1)), (T0 + 1, tassoc(optout, 2)), (T0 + 2, tassoc(plain, 3))])
    ident = Identifier(MASTER, registry=reg)
    devices = ident.identify_batch(batch).tolist()
    # the member's association carries the id the portal registered; the opted-out phone's is dropped
    assert devices == [member_device_id(MASTER, mb[member]), None, device_id(key_for(T0), mb[plain])]
    assert [s.kind for s in sightings(batch, np.array(devices, object), "s", "n", sid_key(MASTER))] == ["assoc"] * 2


# ---------------------------------------------------------------------------------------------------------------
# storage: the kind column (revision analytics_0004)

def test_the_kind_is_stored_and_old_rows_read_as_probes(tmp_path: Path) -> None:
    from alembic import command

    engine = db.make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    command.upgrade(db.alembic_config(engine), "analytics_0002")
    with engine.begin() as conn:  # a row stored before the revision
        conn.execute(sa.text("insert into sightings (sid, ts, store, sensor, device, rssi, freq, seq, randomized) "
                             "values ('old', 1.0, 's', 'n', 'd', -50, 2412, 1, 0)"))
    db.upgrade(engine)
    batch = batch_of([(T0, tassoc(PHONE, 1)), (T0 + 1, tframe("basic", PHONE, 2))])
    devices = Identifier(MASTER).identify_batch(batch)
    assert insert_sightings(engine, sightings(batch, devices, "s", "n", sid_key(MASTER))) == 2
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sightings_table.c.sid, sightings_table.c.kind).order_by(
            sightings_table.c.ts)).all()
    assert [k for _sid, k in rows] == ["probe", "assoc", "probe"] and rows[0][0] == "old"


# ---------------------------------------------------------------------------------------------------------------
# the station id: an association also carries its address keyed as the AP's station list keys it

def station_of(ident: Identifier) -> StationKey:
    return lambda raw, ts: station_device(raw, ts, MASTER, ident.policy, ident.registry, ident.ignore)


def hostapd_says(mac: str, now: float, policy: PrivacyPolicy | None = None,
                 registry: Registry | None = None) -> list[str]:
    """The device ids the AP's station list gives ``mac`` polled at ``now`` (none: dropped)."""
    st = Station(mac, frozenset({"AUTH", "ASSOC"}), -50, 30, 100)
    return [s.device for s in station_sightings([st], now, "s", "ap", MASTER, policy or PrivacyPolicy(),
                                                sid_key(MASTER),
                                                registry=registry)]


def test_an_association_under_a_linked_device_carries_the_station_id_of_its_address() -> None:
    # the phone probes from a rotating address, then from its per-network address (its counter continues, so the
    # linker joins the two), then associates from the per-network address (in a run of its own: another phone's
    # frame between): the association is stored under the linked device, and its station id is the one hostapd's
    # list gives the same address that day
    rotating = "06:7a:00:00:00:01"
    phone = mac_bytes(PHONE)
    batch = ProbeBatch.from_probes([
        Probe(T0, mac_bytes(rotating), 100, -50, 2437, b"", 7), Probe(T0 + 1, mac_bytes(rotating), 101, -50, 2437, b"", 7),
        Probe(T0 + 20, phone, 140, -50, 2437, b"", 7),  # the counter continues: the same phone
        Probe(T0 + 22, mac_bytes("0a:1b:2c:3d:4e:5f"), 9, -80, 2437, b"", 8),  # another phone, between
        Probe(T0 + 25, phone, 141, -50, 2437, b"", 7, KIND_ASSOC)])
    ident = Identifier(MASTER)
    devices = ident.identify_batch(batch)
    out = sightings(batch, devices, "s", "n", sid_key(MASTER), station_of(ident))
    linked = device_id(key_for(T0), bytes.fromhex(rotating.replace(":", "")))
    assert [s.device for s in out if s.device != out[3].device] == [linked] * 4  # the linker's join (the precondition of this test)
    (assoc,) = [s for s in out if s.kind == "assoc"]
    assert assoc.station == hostapd_says(PHONE, T0 + 3600)[0] != assoc.device
    assert {s.station for s in out if s.kind == "probe"} == {None}
    assert all(PHONE.replace(":", "") not in repr(s).replace(":", "") for s in out)  # no raw MAC anywhere


@pytest.mark.parametrize(("mode", "days", "same"), [("strict", 1, False), ("linked", 1, True), ("linked", 30, False)])
def test_the_station_id_rotates_as_the_stations_ids_do(mode: str, days: float, same: bool) -> None:
    policy = PrivacyPolicy(mode=mode, link_days=30)  # type: ignore[arg-type]
    raw = bytes.fromhex(PHONE.replace(":", ""))
    # T0's local day (20458) is day 28 of its 30-day block: the next day is in the same block, 30 days on is not
    first = station_device(raw, T0, MASTER, policy, Registry())
    later = station_device(raw, T0 + days * 86400, MASTER, policy, Registry())
    assert first == hostapd_says(PHONE, T0, policy)[0]
    assert later == hostapd_says(PHONE, T0 + days * 86400, policy)[0]
    assert (first == later) is same


def test_the_station_id_of_a_member_an_opted_out_and_an_ignored_address() -> None:
    member, optout, ignored = "da:00:00:00:00:01", "da:00:00:00:00:02", "da:00:00:00:00:03"
    raw = {m: bytes.fromhex(m.replace(":", "")) for m in (member, optout, ignored)}
    reg = Registry(members=frozenset({member_device_id(MASTER, raw[member])}),
                   optouts=frozenset({member_device_id(MASTER, raw[optout])}))
    policy = PrivacyPolicy()
    assert station_device(raw[member], T0, MASTER, policy, reg) == member_device_id(MASTER, raw[member]) == \
        hostapd_says(member, T0, registry=reg)[0]
    assert station_device(raw[optout], T0, MASTER, policy, reg) is None == (hostapd_says(optout, T0, registry=reg)
                                                                          or None)
    assert station_device(raw[ignored], T0, MASTER, policy, reg, frozenset({raw[ignored]})) is None


def test_the_station_id_travels_through_the_spool_format_only_where_it_is_set() -> None:
    batch = batch_of([(T0, tframe("basic", PHONE, 1)), (T0 + 1, tassoc(PHONE, 2))])
    ident = Identifier(MASTER)
    probe, assoc = sightings(batch, ident.identify_batch(batch), "s", "n", sid_key(MASTER), station_of(ident))
    assert "station" not in to_dict(probe) and to_dict(assoc)["station"] == assoc.station is not None
    assert [from_dict(json.loads(json.dumps(to_dict(s)))) for s in (probe, assoc)] == [probe, assoc]


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_the_station_id_is_stored_and_the_revision_downgrades(dialect: str, tmp_path: Path,
                                                              request: pytest.FixtureRequest) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 's.db'}" if dialect == "sqlite" else str(request.getfixturevalue("postgres_url"))
    engine = db.make_engine(url)
    try:
        command.upgrade(db.alembic_config(engine), "analytics_0005_connbasis")
        with engine.begin() as conn:  # an association stored before the revision
            conn.execute(sa.text("insert into sightings (sid, ts, store, sensor, device, rssi, freq, seq, randomized, "
                                 "basis, kind) values ('old', 1.0, 's', 'n', 'd', -50, 2412, 1, false, 'probe', 'assoc')"))
        db.upgrade(engine)
        batch = batch_of([(T0, tassoc(PHONE, 1)), (T0 + 1, tframe("basic", PHONE, 2))])
        ident = Identifier(MASTER)
        assert insert_sightings(engine, sightings(batch, ident.identify_batch(batch), "s", "n", sid_key(MASTER),
                                                  station_of(ident))) == 2
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sightings_table.c.kind, sightings_table.c.station).order_by(
                sightings_table.c.ts)).all()
        assert [tuple(r) for r in rows] == [("assoc", None), ("assoc", hostapd_says(PHONE, T0)[0]), ("probe", None)]
        assert "ix_sightings_station" in {i["name"] for i in sa.inspect(engine).get_indexes("sightings")}
        command.downgrade(db.alembic_config(engine), "analytics_0005_connbasis")
        assert "station" not in {c["name"] for c in sa.inspect(engine).get_columns("sightings")}
        assert "ix_sightings_connected" in {i["name"] for i in sa.inspect(engine).get_indexes("sightings")}
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from sightings")).scalar() == 3
    finally:
        engine.dispose()
