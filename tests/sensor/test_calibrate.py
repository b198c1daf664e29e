"""``keliu sensor calibrate``: the pure suggestion logic, and the command on a capture of a walk (``--file``) and live
(a real monitor interface when the machine has one; else the live loop fed by a stand-in radio)."""
from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sensor.calibrate import Board, NoSuggestion, Suggestion, otsu, percentile, suggest

ROOT = Path(__file__).resolve().parents[2]


def walk(inside: float, outside: float, n: int = 40, noise: float = 3.0, seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    return [round(rng.gauss(inside, noise)) for _ in range(n)] + [round(rng.gauss(outside, noise)) for _ in range(n)]


# ---- pure --------------------------------------------------------------------------------------------------------


def test_a_clear_walk_gives_thresholds_between_inside_and_outside() -> None:
    readings = walk(-52, -80)
    got = suggest(readings)
    assert isinstance(got, Suggestion)
    inside = [r for r in readings if r > got.split]
    outside = [r for r in readings if r <= got.split]
    assert got.outside[1] < got.stay_rssi <= got.visit_rssi <= got.inside[1]
    assert got.visit_rssi - got.stay_rssi <= 5
    # most inside readings start a visit, nearly no outside reading keeps one going
    assert sum(r >= got.visit_rssi for r in inside) >= 0.9 * len(inside)
    assert sum(r >= got.stay_rssi for r in outside) <= 0.1 * len(outside)


def test_the_thresholds_follow_the_store() -> None:
    near = suggest(walk(-45, -70))
    far = suggest(walk(-60, -88))
    assert isinstance(near, Suggestion) and isinstance(far, Suggestion)
    assert near.visit_rssi > far.visit_rssi and near.stay_rssi > far.stay_rssi


def test_overlapping_inside_and_outside_say_move_the_sensor() -> None:
    got = suggest(walk(-66, -70, noise=4))
    assert isinstance(got, NoSuggestion) and "move it deeper into the store" in got.reason


def test_too_few_readings_say_walk_again() -> None:
    got = suggest([-50, -52, -80, -81])
    assert isinstance(got, NoSuggestion) and "walk in and out again" in got.reason
    one_sided = suggest([-50] * 30 + [-80] * 3)
    assert isinstance(one_sided, NoSuggestion) and "outside" in one_sided.reason


def test_otsu_and_percentile() -> None:
    assert -75 < otsu([-50] * 10 + [-90] * 10) < -55
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1) == 1 and percentile(list(range(10)), 0.9) == 8


def test_board_shows_the_strongest_recent_devices_and_finds_the_walker() -> None:
    b = Board()
    for i in range(30):
        b.add(1000.0 + i, "phone", -50 - (i % 3))
    b.add(1000.0, "laptop", -40)  # strongest, but heard once (a fixed device near the sensor)
    b.add(900.0, "old", -30)  # not heard in the last minute
    for i in range(5):
        b.add(1000.0 + i, "passer", -85)
    b.add(1001.0, "nosignal", None)
    rows = b.top(3, now=1030.0)
    assert [r.device for r in rows] == ["laptop", "phone", "passer"]
    assert rows[1].count == 30 and rows[1].strongest == -50 and rows[1].last == -52
    assert b.walker() == "phone" and "nosignal" not in b.tracks


# ---- the command -------------------------------------------------------------------------------------------------


def walk_capture(path: Path) -> None:
    """A technician's phone (one fixed MAC) walked outside (about -80 dBm) and inside (about -52 dBm) the store,
    five times each, with shoppers walking by at -85 dBm."""
    from keliu.testing.simulate import Person, Scenario, simulate, write_pcap

    sc = Scenario(scan_interval_s=4.0)
    t0 = sc.day_start(0) + 11 * 3600
    mac = bytes.fromhex("f025b7000001")
    spans_in = tuple((t0 + i * 240, t0 + i * 240 + 120) for i in range(5))
    spans_out = tuple((t0 + i * 240 + 120, t0 + i * 240 + 240) for i in range(5))
    people = (Person(1, "visitor", "legacy-android", mac, -52.0, spans_in),
              Person(2, "passerby", "legacy-android", mac, -80.0, spans_out),
              *(Person(10 + i, "passerby", "ios14", bytes.fromhex(f"f0d1a90000{i:02x}"), -85.0,
                       ((t0 + 60 * i, t0 + 60 * i + 60),)) for i in range(8)))
    frames, _truth = simulate(Scenario(scan_interval_s=4.0, people=people), seed=5)
    write_pcap(path, frames)


def keliu_toml(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "keliu.toml").write_text("[sensor]\nstore = 's1'\n[[malls]]\nid = 'm1'\n[[stores]]\nid = 's1'\n"
                                         "mall = 'm1'\n", encoding="utf-8")
    return {"KELIU_CONFIG": str(tmp_path / "keliu.toml"), "KELIU_VAR_DIR": str(tmp_path / "var")}


def check_output(out: str) -> tuple[int, int]:
    assert not re.search(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", out), "a raw MAC on the console"
    visit = int(re.search(r"visit_rssi = (-\d+)\n", out).group(1))  # type: ignore[union-attr]
    stay = int(re.search(r"stay_rssi = (-\d+)$", out.strip()).group(1))  # type: ignore[union-attr]
    assert '[[analytics.stores]]\nid = "s1"' in out
    return visit, stay


def test_calibrate_from_a_capture_of_the_walk(tmp_path: Path) -> None:
    import os

    walk_capture(tmp_path / "walk.pcap")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")} | keliu_toml(tmp_path)
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "keliu.cli", "sensor", "calibrate", "--file", str(tmp_path / "walk.pcap")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    visit, stay = check_output(out.stdout)
    assert -80 < stay <= visit < -52
    assert "strongest devices" in out.stdout and out.stdout.count("\n") > 5


def test_calibrate_live_with_a_stand_in_radio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live loop: the table is redrawn while probes arrive, and Ctrl-C (here: the end of the walk) ends it
    with the suggestion. The radio is a stand-in that hands the walk's frames to the same sink capture() feeds."""
    import sensor.capture
    from sensor.cli import sensor as group
    from sensor.replay import iter_batches

    walk_capture(tmp_path / "walk.pcap")
    fed: list[int] = []

    def radio(iface: str, channels: list[int], dwell_ms: int, pipe: Any, stop: Any) -> None:
        assert iface == "mon0" and channels
        for batch in iter_batches(pipe.parser, tmp_path / "walk.pcap", size=64):
            pipe.feed(batch)
            fed.append(len(batch))
            if stop():
                break
        pipe.close()

    monkeypatch.setattr(sensor.capture, "capture", radio)
    monkeypatch.setattr(sensor.capture, "check_interface", lambda iface: None)
    res = CliRunner().invoke(group, ["calibrate", "--iface", "mon0", "--seconds", "60"], env=keliu_toml(tmp_path))
    assert res.exit_code == 0, res.output
    assert len(fed) > 3 and res.output.count("strongest devices") >= 2  # redrawn while it ran, then the last table
    visit, stay = check_output(res.output)
    assert -80 < stay <= visit < -52


def test_calibrate_live_on_a_real_monitor_interface(tmp_path: Path) -> None:
    import os

    from sensor.capture import check_interface
    from sensor.errors import CaptureUnavailable

    wireless = sorted(p.name for p in Path("/sys/class/net").glob("*") if (p / "phy80211").exists())
    if not wireless:
        pytest.skip("live capture: this machine has no wireless card (the live loop is tested with a stand-in)")
    try:
        check_interface(wireless[0])
    except CaptureUnavailable as exc:
        pytest.skip(f"live capture: {exc}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")} | keliu_toml(tmp_path)
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "keliu.cli", "sensor", "calibrate", "--iface", wireless[0],
                          "--seconds", "5"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         check=False)
    assert "strongest devices" in out.stdout and out.returncode in (0, 1), out.stderr
    assert not re.search(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", out.stdout)


def test_calibrate_needs_a_source(tmp_path: Path) -> None:
    from sensor.cli import sensor as group

    res = CliRunner().invoke(group, ["calibrate"], env=keliu_toml(tmp_path))
    assert res.exit_code == 2 and "--iface" in res.output
