"""The spool and delivery: bounded and loud, acknowledged after commit, exactly once after kill -9."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sensor.errors import SpoolFull
from sensor.records import Sighting
from sensor.sinks import Delivery, MemorySink
from sensor.spool import Spool

ROOT = Path(__file__).resolve().parents[2]


def tsighting(i: int) -> Sighting:
    return Sighting(f"{i:032x}", 1000.0 + i, "demo-store", "sensor-1", f"{i:016x}", -50, 2437, i % 4096, i % 2 == 0)


def test_put_load_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    a = spool.put([tsighting(1), tsighting(2)], {"probes": 2})
    b = spool.put([tsighting(3)])
    assert spool.pending() == [a, b]
    assert spool.load_batch(a) == ([tsighting(1), tsighting(2)], [])
    assert spool.load_state() == {"probes": 2}
    spool.ack(a)
    assert spool.pending() == [b]
    assert spool.bytes == b.stat().st_size
    (tmp_path / "000000000009.json.tmp").write_text("half a write")
    again = Spool(tmp_path, 10**6)  # a restart: an interrupted write is discarded, numbering continues
    assert again.pending() == [b]
    assert not list(tmp_path.glob("*.tmp"))
    assert again.put([tsighting(4)]).name == "000000000003.json"


def test_full_spool_refuses_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, 400)
    spool.put([tsighting(1)])
    with caplog.at_level(logging.ERROR), pytest.raises(SpoolFull):
        spool.put([tsighting(i) for i in range(10)])
    assert spool.dropped == 10
    assert "FULL" in caplog.text
    assert len(spool.pending()) == 1


def test_delivery_keeps_batches_while_the_sink_is_down(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10**6)
    sink = MemorySink()
    delivery = Delivery(spool, sink)
    sink.fail = True
    spool.put([tsighting(1)])
    spool.put([tsighting(2)])
    assert delivery.drain(now=0.0) == 0
    assert delivery.drain(now=0.5) == 0  # backing off: not even tried
    assert len(spool.pending()) == 2 and delivery.last_error
    sink.fail = False
    assert delivery.drain(now=1.0) == 2
    assert sink.batches == [[tsighting(1)], [tsighting(2)]]
    assert spool.pending() == [] and delivery.delivered == 2 and not delivery.last_error


# ---------------------------------------------------------------------------------------------------------------
# kill -9 while the database is down, then a restart with it up


def short_capture(path: Path) -> int:
    """About 2,000 probes within 60 s (so a replay at 10x speed takes 6 s)."""
    from keliu.testing.simulate import Person, Scenario, simulate, write_pcap

    t0 = Scenario().day_start(0) + 12 * 3600
    people = tuple(Person(i, "visitor", m, bytes([0x00, 0x11, 0x22, 0x33, 0x44, i]), -50.0 - i % 20, ((t0, t0 + 60),))
                   for i, m in enumerate(["ios16-perscan", "android10-seq", "legacy-android", "ios14"] * 10))
    frames, _ = simulate(Scenario(people=people, scan_interval_s=1.0), 5)
    return write_pcap(path, frames)


def sensor_env(tmp_path: Path, database_url: str, batch: int = 50) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"KELIU_DATABASE_URL": database_url, "KELIU_VAR_DIR": str(tmp_path / "var"),
                "KELIU_SENSOR_SPOOL_DIR": str(tmp_path / "spool"), "KELIU_SENSOR_BATCH_SIZE": str(batch),
                "KELIU_SENSOR_HEALTH_SECONDS": "1", "PYTHONPATH": str(ROOT)})
    env.pop("KELIU_CONFIG", None)
    return env


def replay_argv(capture: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "keliu.cli", "sensor", "replay", str(capture), "--store", "demo-store", *extra]


def expected_sids(capture: Path, var: Path) -> set[str]:
    from keliu import keys
    from sensor.frames import Parser
    from sensor.grouping import Identifier
    from sensor.identity import sid_key
    from sensor.sightings import sightings

    master = keys.secret_bytes(var, "device_hmac")
    ident = Identifier(master)
    out: set[str] = set()
    for batch in Parser().batches(capture.read_bytes()):
        out |= {s.sid for s in sightings(batch, ident.identify_batch(batch), "demo-store", "sensor-1",
                                         sid_key(master))}
    return out


def test_kill_9_while_the_database_is_down_then_exactly_once(tmp_path: Path) -> None:
    capture = tmp_path / "short.pcap"
    n = short_capture(capture)
    down = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"
    with open(tmp_path / "run1.log", "wb") as log:
        proc = subprocess.Popen(replay_argv(capture, "--speed", "10"), env=sensor_env(tmp_path, down), cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT)
    spool = tmp_path / "spool" / "demo-store-sensor-1"
    deadline = time.monotonic() + 60
    while len(list(spool.glob("[0-9]*.json"))) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, (tmp_path / "run1.log").read_text()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    spooled = sorted(spool.glob("[0-9]*.json"))
    assert len(spooled) >= 4
    state = (spool / "state.json").read_text()
    assert '"probes": ' in state and f'"probes": {n}' not in state  # killed half-way

    db_url = f"sqlite:///{tmp_path / 'keliu.db'}"
    res = subprocess.run(replay_argv(capture, "--max"), env=sensor_env(tmp_path, db_url), cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "0 batches still spooled" in res.stdout
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        sids = [r[0] for r in conn.execute(sa.text("SELECT sid FROM sightings"))]
        health = conn.execute(sa.text("SELECT frames, drops, spool_batches FROM sensor_health")).one()
    engine.dispose()
    assert len(sids) == len(set(sids))
    assert set(sids) == expected_sids(capture, tmp_path / "var")
    assert len(sids) == n
    assert health.spool_batches == 0


def test_a_damaged_batch_is_set_aside_not_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, 10**6)
    bad = spool.put([tsighting(1)])
    bad.write_bytes(b"[{" + b"x" * (bad.stat().st_size - 2))  # damaged, same size
    spool.put([tsighting(2)])
    sink = MemorySink()
    with caplog.at_level(logging.ERROR):
        assert Delivery(spool, sink).drain(now=0.0) == 1
    assert sink.batches == [[tsighting(2)]]
    assert bad.with_suffix(".bad").exists() and "unreadable" in caplog.text
    assert spool.pending() == [] and spool.bytes == 0


def test_background_delivery_thread(tmp_path: Path) -> None:
    from sensor.sinks import DeliveryThread

    spool = Spool(tmp_path, 10**6)
    sink = MemorySink()
    thread = DeliveryThread(Delivery(spool, sink), interval=0.01)
    thread.start()
    for i in range(20):
        spool.put([tsighting(i)])
    deadline = time.monotonic() + 10
    while len(sink.batches) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    thread.stop()
    assert [b[0] for b in sink.batches] == [tsighting(i) for i in range(20)]
    assert spool.pending() == [] and spool.bytes == 0


def test_a_batch_with_the_aps_polls_round_trips_and_one_without_keeps_the_list(tmp_path: Path) -> None:
    import json

    from sensor.stations import poll_record

    spool = Spool(tmp_path, 10**6)
    polls = [poll_record("demo-store", "sensor-1-ap", 1010.0, 0)]
    a = spool.put([tsighting(1)], polls=polls)
    b = spool.put([], polls=polls)  # a poll that found nobody: a batch of its own
    c = spool.put([tsighting(2)])
    assert spool.load_batch(a) == ([tsighting(1)], polls)
    assert spool.load_batch(b) == ([], polls)
    assert isinstance(json.loads(c.read_bytes()), list) and spool.load_batch(c) == ([tsighting(2)], [])
    sink = MemorySink()
    assert Delivery(spool, sink).drain(now=0.0) == 3
    assert (sink.batches, sink.polls) == ([[tsighting(1)], [tsighting(2)]], polls + polls)


def test_a_batch_of_another_shape_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "000000000001.json").write_text('{"sightings": [], "polls": [{"store": "s"}]}')
    (tmp_path / "000000000002.json").write_text('{"rows": []}')
    spool = Spool(tmp_path, 10**6)
    good = spool.put([tsighting(3)])
    sink = MemorySink()
    assert Delivery(spool, sink).drain(now=0.0) == 1
    assert sink.batches == [[tsighting(3)]] and not good.exists()
    assert sorted(p.name for p in tmp_path.glob("*.bad")) == ["000000000001.bad", "000000000002.bad"]
