"""Pipeline, replay pacing and looping (fake clock), sinks against real databases and a real broker, the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from keliu import db
from keliu.testing.simulate import Person, Scenario, simulate, write_pcap
from sensor import consent
from sensor.cli import sensor
from sensor.frames import Parser
from sensor.grouping import Identifier
from sensor.identity import member_device_id, sid_key
from sensor.pipeline import Pipeline
from sensor.records import StationPoll
from sensor.replay import replay
from sensor.sightings import Batcher
from sensor.sinks import Delivery, Health, MemorySink, SqlHealth, SqlSink, health_table
from sensor.spool import Spool
from tests.conftest import require_tool
from tests.sensor.sensorkit import tframe, tpcapng, write_records
from tests.sensor.test_spool import tsighting

MASTER = bytes(32)


@dataclass
class FakeClock:
    now: float = 1_000_000.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


class Healths:
    def __init__(self) -> None:
        self.reports: list[Health] = []

    def report(self, health: Health) -> None:
        self.reports.append(health)


def tpipe(tmp_path: Path, clock: FakeClock, sink: object | None = None, batch: int = 100,
          master: bytes = MASTER) -> Pipeline:
    spool = Spool(tmp_path / "spool", 10**7)
    return Pipeline(store="demo-store", sensor="sensor-1", parser=Parser(), identifier=Identifier(master),
                    sid_key=sid_key(master), spool=spool, delivery=Delivery(spool, sink or MemorySink()),  # type: ignore
                    health=Healths(), batcher=Batcher(batch, 2.0), clock=clock)


def tcapture(path: Path, seconds: float = 100.0) -> int:
    t0 = Scenario().day_start(0) + 15 * 3600
    people = tuple(Person(i, "visitor", "legacy-android", bytes([0, 1, 2, 3, 4, i]), -50.0, ((t0, t0 + seconds),))
                   for i in range(5))
    frames, _ = simulate(Scenario(people=people, scan_interval_s=5.0), 1)
    return write_pcap(path, frames)


def test_batcher_by_count_and_time() -> None:
    b = Batcher(3, 2.0)
    assert b.add([tsighting(i) for i in range(4)], now=0.0) == [[tsighting(0), tsighting(1), tsighting(2)]]
    assert b.due(1.0) == []
    assert b.due(2.5) == [[tsighting(3)]]
    assert len(b) == 0 and b.flush() == []


def test_paced_replay_takes_the_recorded_time_over_speed(tmp_path: Path) -> None:
    n = tcapture(tmp_path / "c.pcap")
    clock = FakeClock()
    sink = MemorySink()
    pipe = tpipe(tmp_path, clock, sink)
    assert replay(tmp_path / "c.pcap", pipe, speed=10, clock=clock, sleep=clock.sleep) == n
    assert 8.0 <= sum(clock.slept) <= 10.5  # about 100 s of capture at 10x
    got = [s for b in sink.batches for s in b]
    assert len(got) == n
    assert pipe.health.reports and pipe.health.reports[-1].frames == n  # type: ignore[attr-defined]
    assert pipe.health.reports[-1].channel in (1, 6, 11)  # type: ignore[attr-defined]


def test_loop_moves_the_capture_to_now_then_a_day_per_round(tmp_path: Path) -> None:
    tcapture(tmp_path / "c.pcap")
    clock = FakeClock(now=1_800_000_000.0)
    sink = MemorySink()
    replay(tmp_path / "c.pcap", tpipe(tmp_path, clock, sink), speed=None, loop=True, clock=clock, rounds=2)
    ts = sorted(s.ts for b in sink.batches for s in b)
    half = len(ts) // 2
    assert ts[0] == pytest.approx(1_800_000_000.0, abs=1e-3)
    assert ts[half] - ts[0] == pytest.approx(86400, abs=1.0)
    assert len({s.sid for b in sink.batches for s in b}) == len(ts)  # each round's sightings are new ones


def test_sql_sink_health_and_registry_on_sqlite(tmp_path: Path, migrated_sqlite_url: str) -> None:
    engine = db.make_engine(migrated_sqlite_url)
    db.upgrade(engine)
    n = tcapture(tmp_path / "c.pcap")
    gone = bytes([0, 1, 2, 3, 4, 0])
    consent.register(engine, member_device_id(MASTER, gone), "optout")
    consent.register(engine, member_device_id(MASTER, gone), "member")  # an opt-out wins
    clock = FakeClock()
    pipe = tpipe(tmp_path, clock, SqlSink(engine))
    pipe.health = SqlHealth(engine)
    pipe.registry = lambda: consent.load(engine)
    replay(tmp_path / "c.pcap", pipe, speed=None, clock=clock)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM sightings")).scalar()
        row = conn.execute(sa.select(health_table())).one()
    assert stored == n - pipe.identifier.stats.opted_out > 0
    assert pipe.identifier.stats.opted_out > 0
    assert (row.sensor, row.frames, row.spool_batches, row.status) == ("sensor-1", n, 0, "ok")
    from keliu import config, tenants
    from sensor.sinks import health_records

    tenants.sync(engine, config.build({}))
    (rec,) = health_records(engine, now=row.last_frame_ts + 5)
    assert (rec["mall"], rec["store"], rec["sensor"], rec["last_frame_age_s"]) == ("demo-mall", "demo-store",
                                                                                   "sensor-1", 5.0)
    consent.unregister(engine, member_device_id(MASTER, gone))
    assert consent.load(engine).optouts == frozenset()
    engine.dispose()


@pytest.mark.integration
def test_sql_sink_on_postgresql(tmp_path: Path, migrated_postgres_url: str) -> None:
    engine = db.make_engine(migrated_postgres_url)
    db.upgrade(engine)
    sink = SqlSink(engine)
    sink.deliver([tsighting(1), tsighting(2)])
    sink.deliver([tsighting(2), tsighting(3)])  # re-delivered: stored once
    SqlHealth(engine).report(Health("s", "demo-store", 1.0, 0.0, 1.0, 1, 1, 0, 0, 0, 0, 0, 0, 3, None, None, None,
                                    0, 0, "strict"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sightings")).scalar() == 3
        assert conn.execute(sa.text("SELECT delivered FROM sensor_health")).scalar() == 3
    engine.dispose()


@pytest.mark.integration
def test_celery_sink_enqueues_the_named_task(redis_url: str) -> None:
    import redis

    from sensor.sinks import CelerySink

    url = redis_url.rsplit("/", 1)[0] + "/13"
    r = redis.Redis.from_url(url)
    r.delete("keliu-sensor-test")
    CelerySink(url, queue="keliu-sensor-test").deliver([tsighting(1), tsighting(2)])
    (raw,) = r.lrange("keliu-sensor-test", 0, -1)
    msg = json.loads(raw)
    assert msg["headers"]["task"] == "analytics.ingest_batch"
    import base64

    args = json.loads(base64.b64decode(msg["body"]))[0]
    assert [d["sid"] for d in args[0]] == [tsighting(1).sid, tsighting(2).sid]
    r.delete("keliu-sensor-test")
    r.close()


def test_celery_sink_down_is_a_delivery_error() -> None:
    from sensor.errors import DeliveryError
    from sensor.sinks import CelerySink

    with pytest.raises(DeliveryError):
        CelerySink("redis://127.0.0.1:9/0").deliver([tsighting(1)])


def test_parse_cli_csv_without_mac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    n = tcapture(tmp_path / "c.pcap")
    res = CliRunner().invoke(sensor, ["parse", str(tmp_path / "c.pcap"), "--format", "csv"], catch_exceptions=False)
    lines = res.stdout.splitlines()
    assert lines[0] == "ts,device,rssi,freq,channel,seq,ssid,randomized,kind"
    assert len(lines) == n + 1
    assert "00:01:02:03:04" not in res.stdout


def test_run_without_a_wireless_card_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sensor.capture import check_interface
    from sensor.errors import CaptureUnavailable

    monkeypatch.setenv("KELIU_VAR_DIR", str(tmp_path / "var"))
    res = CliRunner().invoke(sensor, ["run", "--iface", "wlan-none0"])
    assert res.exit_code != 0
    assert isinstance(res.exception, CaptureUnavailable) and "no interface 'wlan-none0'" in str(res.exception)
    fake = tmp_path / "net"
    (fake / "mon0" / "phy80211").mkdir(parents=True)
    (fake / "mon0" / "type").write_text("1\n")
    with pytest.raises(CaptureUnavailable, match="not in monitor mode"):
        check_interface("mon0", fake)
    (fake / "mon0" / "type").write_text("803\n")
    check_interface("mon0", fake)  # root here; a monitor interface passes


def test_capture_needs_cap_net_raw_not_uid_0() -> None:
    # keliu-sensor.service runs as the user keliu with AmbientCapabilities=CAP_NET_RAW: that must be enough
    from sensor.capture import has_net_raw

    unit = "Name:\tkeliu\nUid:\t998\t998\t998\t998\nCapInh:\t0000000000003000\nCapEff:\t0000000000003000\n"
    assert has_net_raw(unit)  # CAP_NET_ADMIN (12) and CAP_NET_RAW (13)
    assert not has_net_raw(unit.replace("CapEff:\t0000000000003000", "CapEff:\t0000000000001000"))
    assert has_net_raw("Uid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n")  # root
    assert not has_net_raw("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n")


def test_live_capture_on_a_monitor_interface(tmp_path: Path) -> None:
    import time

    from sensor.capture import capture, check_interface
    from sensor.errors import CaptureUnavailable

    wireless = sorted(p.name for p in Path("/sys/class/net").glob("*") if (p / "phy80211").exists())
    if not wireless:
        pytest.skip("live capture: this machine has no wireless card; the pipeline is tested through replay")
    try:
        check_interface(wireless[0])
    except CaptureUnavailable as exc:
        pytest.skip(f"live capture: {exc}")
    clock = FakeClock()
    pipe = tpipe(tmp_path, clock)
    end = time.monotonic() + 3
    capture(wireless[0], [1, 6], 500, pipe, stop=lambda: time.monotonic() > end)
    assert pipe.health.reports  # type: ignore[attr-defined]


def test_chunked_reading_cuts_at_record_boundaries(tmp_path: Path) -> None:
    from sensor.replay import capture_chunks, iter_batches

    n = tcapture(tmp_path / "c.pcap")
    whole = list(Parser().parse_capture((tmp_path / "c.pcap").read_bytes()))
    pieces = list(capture_chunks(tmp_path / "c.pcap", chunk=1000))
    assert len(pieces) > 5
    assert [p for b in iter_batches(Parser(), tmp_path / "c.pcap") for p in b.probes()] == whole
    assert sum(len(list(Parser().parse_capture(p))) for p in pieces) == n


def test_sightings_are_ordinary_frozen_records_with_stable_sids(tmp_path: Path) -> None:
    import dataclasses
    import hashlib
    import struct

    from sensor.records import Sighting
    from sensor.sightings import sightings

    tcapture(tmp_path / "c.pcap")
    (batch,) = list(Parser().batches((tmp_path / "c.pcap").read_bytes()))
    devices = Identifier(MASTER).identify_batch(batch)
    got = sightings(batch, devices, "demo-store", "sensor-1", sid_key(MASTER))
    p = batch.probe(0)
    sid = hashlib.blake2b(b"sensor-1\0" + struct.pack(">qH6s", round(p.ts * 1e6), p.seq, p.mac), digest_size=16,
                          key=sid_key(MASTER)).hexdigest()
    assert got[0] == Sighting(sid, p.ts, "demo-store", "sensor-1", devices[0], p.rssi, p.freq, p.seq, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got[0].device = "x"  # type: ignore[misc]
    assert got == sightings(batch, devices, "demo-store", "sensor-1", sid_key(MASTER))
    assert len({s.sid for s in got}) == len(got)


def test_a_truncated_last_record_is_ignored(tmp_path: Path) -> None:
    from sensor.replay import iter_batches

    n = tcapture(tmp_path / "c.pcap")
    data = (tmp_path / "c.pcap").read_bytes()
    (tmp_path / "cut.pcap").write_bytes(data + data[24:24 + 16 + 20])  # a record header and part of its frame
    for path in (tmp_path / "c.pcap", tmp_path / "cut.pcap"):
        assert sum(len(b) for b in iter_batches(Parser(), path)) == n
        assert len(list(Parser().parse_capture(path.read_bytes()))) == n


def test_loop_resumes_where_it_stopped_unless_that_was_days_ago(tmp_path: Path) -> None:
    tcapture(tmp_path / "c.pcap")
    clock = FakeClock(now=1_800_000_000.0)
    replay(tmp_path / "c.pcap", tpipe(tmp_path, clock), speed=None, loop=True, clock=clock, rounds=1)
    clock.now += 600  # restarted ten minutes later: round 1 continues the timeline
    sink = MemorySink()
    replay(tmp_path / "c.pcap", tpipe(tmp_path, clock, sink), speed=None, loop=True, clock=clock, rounds=2)
    assert min(s.ts for b in sink.batches for s in b) == pytest.approx(1_800_000_000.0 + 86400, abs=1e-3)
    clock.now += 5 * 86400  # restarted days later: starts again at now
    sink = MemorySink()
    replay(tmp_path / "c.pcap", tpipe(tmp_path, clock, sink), speed=None, loop=True, clock=clock, rounds=1)
    assert min(s.ts for b in sink.batches for s in b) == pytest.approx(clock.now, abs=1e-3)


def test_capture_loop_with_a_fake_radio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live path without a wireless card: a socket pair stands in for the monitor interface, a script for
    ``iw``; frames sent into it come out as sightings, and the hopper switches channels."""
    import socket
    import time

    from sensor import capture as cap
    from tests.sensor.sensorkit import tframe

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)

    class FakeSocket:
        def fileno(self) -> int:
            return ours.fileno()

        def recv_raw(self, n: int) -> tuple[None, bytes, None]:
            return None, ours.recv(n), None

        def close(self) -> None:
            ours.close()

    iw_log = tmp_path / "iw.log"
    iw = tmp_path / "iw"
    iw.write_text(f"#!/bin/sh\necho \"$@\" >> {iw_log}\n")
    iw.chmod(0o755)
    monkeypatch.setattr(cap, "check_interface", lambda iface: None)
    monkeypatch.setattr(cap, "open_socket", lambda iface: FakeSocket())
    monkeypatch.setattr(cap.shutil, "which", lambda name: str(iw))
    sink = MemorySink()
    pipe = tpipe(tmp_path, FakeClock(), sink, batch=5)
    pipe.background = True  # as `keliu sensor run` wires it: delivery in its own thread
    pipe.__post_init__()
    for i in range(20):
        theirs.send(tframe("basic", f"00:11:22:33:44:{i:02x}", i))
    deadline = time.monotonic() + 20
    cap.capture("mon0", [1, 6], 50, pipe, stop=lambda: pipe.fed >= 20 or time.monotonic() > deadline, flush_s=0.1)
    theirs.close()
    assert sorted(s.seq for b in sink.batches for s in b) == list(range(20))
    assert "mon0 set channel 1" in iw_log.read_text()


def keliu_sensor(args: list[str], tmp_path: Path, verbose: bool = False) -> subprocess.CompletedProcess[str]:
    """A real ``keliu sensor`` process with its database and var dir in ``tmp_path`` (``verbose``: ``keliu -v``,
    the progress and per-frame log lines that a quiet console leaves out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    env |= {"KELIU_DATABASE_URL": f"sqlite:///{tmp_path / 'keliu.db'}", "KELIU_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, "-m", "keliu.cli", *(["-v"] if verbose else []), "sensor", *args],
                          cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_crafted_pcapng_timestamps_are_refused_and_counted(tmp_path: Path) -> None:
    """Attack review #14: a pcapng whose if_tsresol is 0 (one-second units) stored a sighting at ts = 1.8e19.

    The file is a real pcapng (tshark reads all three frames); `keliu sensor replay` stores only the frame stamped
    within the window and counts the two others (after 2100 / in 1970) in the health report."""
    tshark = require_tool("tshark")
    good = int(time.time()) - 3600
    frames = [(good, tframe("basic", "02:00:00:00:00:01", 1)), (2**64 - 1, tframe("basic", "02:00:00:00:00:02", 2)),
              (5, tframe("basic", "02:00:00:00:00:03", 3))]
    path = tpcapng(tmp_path / "crafted.pcapng", frames, tsresol=b"\x00")
    seen = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "wlan.sa"], capture_output=True, text=True,
                          check=True).stdout.split()
    assert seen == ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]
    out = keliu_sensor(["replay", str(path), "--store", "demo-store", "--max"], tmp_path, verbose=True)
    assert out.returncode == 0, out.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'keliu.db'}")
    with engine.connect() as conn:
        assert [r.ts for r in conn.execute(sa.text("SELECT ts FROM sightings"))] == [pytest.approx(good)]
        row = conn.execute(sa.text("SELECT frames, probes, drops, bad_ts FROM sensor_health")).one()
    engine.dispose()
    assert tuple(row) == (3, 1, 2, 2)
    assert "timestamp out of window" in out.stderr  # the per-frame boundary's log line


def test_a_signal_no_receiver_reads_is_stored_as_none_and_counted_in_health(tmp_path: Path) -> None:
    # a driver's glitch (the real Galaxy S21 capture: +15 dBm) must not become the day's strongest signal
    t = int(time.time()) - 3600
    path = write_records(tmp_path / "loud.pcap", [(t, tframe("basic", "00:1b:2c:3d:4e:01", 1, signal=15)),
                                                  (t + 1, tframe("basic", "00:1b:2c:3d:4e:01", 2, signal=-50))])
    out = keliu_sensor(["replay", str(path), "--store", "demo-store", "--max"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 signals above +10 dBm read as none" in out.stdout  # the summary line
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'keliu.db'}")
    with engine.connect() as conn:
        assert [r.rssi for r in conn.execute(sa.text("SELECT rssi FROM sightings ORDER BY ts"))] == [None, -50]
        row = conn.execute(sa.text("SELECT probes, drops, bad_signal FROM sensor_health")).one()
    engine.dispose()
    assert tuple(row) == (2, 0, 1)


@pytest.mark.parametrize(("tsresol", "message"), [
    (b"\x00\x00", "if_tsresol is 2 bytes long, not 1"),
    (b"\x50", "if_tsresol 0x50 is out of range"),
    (b"\xc0", "if_tsresol 0xc0 is out of range"),
])
def test_malformed_tsresol_refuses_the_file(tmp_path: Path, tsresol: bytes, message: str) -> None:
    path = tpcapng(tmp_path / "bad.pcapng", [(int(time.time()), tframe("basic", "02:00:00:00:00:01", 1))],
                   tsresol=tsresol)
    out = keliu_sensor(["replay", str(path), "--store", "demo-store", "--max"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == f"keliu: pcapng interface 0: {message}"


def test_mac_flood_evictions_reach_the_health_report(tmp_path: Path, sqlite_url: str) -> None:
    """The cap's evictions are reported with the sensor's health (here [sensor] max_macs = 100 through config)."""
    from keliu import config
    from sensor.cli import build_pipeline

    cfg = config.build({"database_url": sqlite_url, "var_dir": str(tmp_path / "var"), "sensor": {"max_macs": 100}})
    pipe = build_pipeline(cfg, "demo-store")
    t0 = time.time() - 600
    recs = [(t0 + i * 0.01, tframe("basic", "02:00:00:" + i.to_bytes(3, "big").hex(":"), i % 4096))
            for i in range(1000)]
    replay(write_records(tmp_path / "flood.pcap", recs), pipe, speed=None)
    assert pipe.identifier.active_macs <= 100
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT probes, evicted FROM sensor_health")).one()
    engine.dispose()
    assert row.probes == 1000 and row.evicted >= 900


def test_follow_offset_moves_whole_days_onto_the_store_local_day() -> None:
    from sensor.replay import follow_offset

    first = Scenario().day_start(0) + 10 * 3600  # 2026-01-05 10:00 in UTC+8
    now = Scenario().day_start(30) + 23.5 * 3600  # 2026-02-04 23:30 in UTC+8 (15:30 UTC: the same UTC day)
    assert follow_offset(first, now, 8 * 3600) == 30 * 86400
    assert follow_offset(first, now + 3600, 8 * 3600) == 31 * 86400  # 00:30 the next store-local day
    assert follow_offset(first, first + 5, 8 * 3600) == 0.0


def test_follow_clock_feeds_yesterday_and_today_up_to_now_and_never_ahead(tmp_path: Path) -> None:
    tcapture(tmp_path / "c.pcap", seconds=100.0)  # 15:00:00-15:01:40 store-local on the scenario's day
    start = Scenario().day_start(10) + 15 * 3600 + 50  # ten days later, 15:00:50
    clock = FakeClock(now=start)
    fed: list[tuple[float, float]] = []  # (clock at delivery, sighting time)

    class Sink(MemorySink):
        def deliver(self, batch: list, polls: Sequence[StationPoll] = ()) -> None:  # type: ignore[type-arg]
            fed.extend((clock.now, s.ts) for s in batch)

    pipe = tpipe(tmp_path, clock, Sink(), batch=1)
    replay(tmp_path / "c.pcap", pipe, clock=clock, sleep=clock.sleep, rounds=2, follow=8 * 3600)
    yesterday = [ts for _now, ts in fed if ts < start - 3600]
    today = [(now, ts) for now, ts in fed if ts >= start - 3600]
    assert yesterday and today
    assert min(yesterday) == pytest.approx(start - 86400 - 50, abs=60)  # the same time of day, yesterday
    assert all(ts <= now + 1e-6 for now, ts in today)  # never a sighting ahead of the clock
    assert min(ts for _n, ts in today) == pytest.approx(start - 50, abs=60)
    assert max(ts for _n, ts in today) > start  # and the rest as the clock reached it



def test_follow_clock_started_after_the_days_last_frame_feeds_both_days_at_their_time_of_day(
        tmp_path: Path) -> None:
    """Started later in the day than the capture's last frame (yesterday's round ended more than a day ago): both
    days are fed at once at their own time of day, not the capture moved to start now (the demo started after
    23:10 Shanghai time replayed its Starbucks day from the moment it started, through the night)."""
    tcapture(tmp_path / "c.pcap", seconds=100.0)  # 15:00:00-15:01:40 store-local on the scenario's day
    start = Scenario().day_start(10) + 23.5 * 3600  # ten days later, 23:30
    clock = FakeClock(now=start)
    fed: list[tuple[float, float]] = []

    class Sink(MemorySink):
        def deliver(self, batch: list, polls: Sequence[StationPoll] = ()) -> None:  # type: ignore[type-arg]
            fed.extend((clock.now, s.ts) for s in batch)

    pipe = tpipe(tmp_path, clock, Sink(), batch=1)
    replay(tmp_path / "c.pcap", pipe, clock=clock, sleep=clock.sleep, rounds=2, follow=8 * 3600)
    today_15h = Scenario().day_start(10) + 15 * 3600
    assert sorted({round((ts - today_15h) / 86400) for _now, ts in fed}) == [-1, 0]  # yesterday and today
    assert all(today_15h - 86400 <= ts <= today_15h + 100 for _now, ts in fed)  # at 15:00, not from 23:30
    assert all(now == start for now, _ts in fed)  # all of it due: fed at once

# -- the AP's poll records (the station list heard; no device) through the pipeline, the spool and both sinks

def tpolls(*times_counts: tuple[float, int]) -> list[StationPoll]:
    from sensor.stations import poll_record

    return [poll_record("demo-store", "sensor-1-ap", t, n) for t, n in times_counts]


def test_polls_that_found_nobody_are_delivered_on_their_own_and_merged(tmp_path: Path) -> None:
    clock = FakeClock(now=1_800_000_000.0)
    sink = MemorySink()
    pipe = tpipe(tmp_path, clock, sink)
    for _ in range(3):  # three polls of one slot, nobody connected
        pipe.feed_sightings([], tpolls((clock.now, 0))[0])
        clock.now += 0.5
    assert sink.polls == []  # waiting batch_seconds (2 s) since the first
    clock.now += 0.5
    pipe.tick()
    assert sink.batches == [] and sink.polls == [StationPoll("demo-store", "sensor-1-ap", 1_800_000_000,
                                                             1_800_000_000.0, 1_800_000_001.0, 0)]


def test_polls_ride_with_their_sightings_and_a_close_spools_the_last(tmp_path: Path) -> None:
    clock = FakeClock(now=1_800_000_000.0)
    sink = MemorySink()
    pipe = tpipe(tmp_path, clock, sink)
    pipe.feed_sightings([tsighting(1)], tpolls((clock.now, 1))[0])
    clock.now += 2.0
    pipe.tick()
    assert sink.batches == [[tsighting(1)]] and sink.polls == tpolls((1_800_000_000.0, 1))
    pipe.feed_sightings([], tpolls((clock.now, 0))[0])
    pipe.close()  # the poller stops: its last poll is not left behind
    assert sink.polls == tpolls((1_800_000_000.0, 1)) + tpolls((1_800_000_002.0, 0))


def station_poll_rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT store, slot, sensor, first, last, stations FROM station_polls ORDER BY slot")).all()]


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def test_the_sql_sink_stores_polls_with_the_batch_merged_and_idempotent(dialect: str,
                                                                         request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("migrated_sqlite_url" if dialect == "sqlite" else "migrated_postgres_url")
    engine = db.make_engine(url)
    sink = SqlSink(engine)
    t = 1_800_000_000.0
    sink.deliver([tsighting(1)], tpolls((t + 10, 2), (t + 20, 4)))
    sink.deliver([tsighting(1)], tpolls((t + 10, 2), (t + 20, 4)))  # re-delivered after a crash: the same rows
    sink.deliver([], tpolls((t + 5, 1), (t + 290, 0), (t + 300, 0)))  # later batches of the same slot, and the next
    assert station_poll_rows(engine) == [("demo-store", 1_800_000_000, "sensor-1-ap", t + 5, t + 290, 4),
                                         ("demo-store", 1_800_000_300, "sensor-1-ap", t + 300, t + 300, 0)]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sightings")).scalar() == 1
    engine.dispose()


@pytest.mark.integration
def test_the_celery_sink_sends_polls_as_a_task_of_their_own(redis_url: str) -> None:
    import base64

    import redis

    from sensor.sinks import CelerySink

    url = redis_url.rsplit("/", 1)[0] + "/13"
    r = redis.Redis.from_url(url)
    r.delete("keliu-sensor-test")
    sink = CelerySink(url, queue="keliu-sensor-test")
    polls = tpolls((1_800_000_010.0, 0))
    sink.deliver([], polls)  # nobody connected: the polls alone
    sink.deliver([tsighting(1)], polls)
    msgs = [json.loads(raw) for raw in reversed(r.lrange("keliu-sensor-test", 0, -1))]  # LPUSH: newest first
    assert [m["headers"]["task"] for m in msgs] == ["analytics.ingest_polls", "analytics.ingest_batch",
                                                    "analytics.ingest_polls"]
    args = json.loads(base64.b64decode(msgs[0]["body"]))[0]
    assert args == [[{"store": "demo-store", "sensor": "sensor-1-ap", "slot": 1_800_000_000,
                      "first": 1_800_000_010.0, "last": 1_800_000_010.0, "stations": 0}]]
    r.delete("keliu-sensor-test")
    r.close()
