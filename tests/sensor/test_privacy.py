"""No raw MAC leaves the sensor: a replay's database, spool, logs and output hold none of the capture's MACs."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sensor.frames import Parser
from tests.conftest import require_shared_data
from tests.sensor.test_spool import replay_argv, sensor_env, short_capture


def mac_forms(mac: bytes) -> list[bytes]:
    h = mac.hex()
    forms = [mac, h.encode(), h.upper().encode()]
    for sep in (":", "-"):
        text = sep.join(h[i:i + 2] for i in range(0, 12, 2))
        forms += [text.encode(), text.upper().encode()]
    return forms


def produced(tmp_path: Path) -> dict[str, bytes]:
    """Every file a run left behind (database, spool, keys, logs, captured output), except the capture itself."""
    return {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".pcap"}


def run_twice(tmp_path: Path, capture: Path, *extra: str) -> None:
    """Once with the database down (everything stays in the spool), once with it up (delivered)."""
    down = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"
    for i, url in enumerate([down, f"sqlite:///{tmp_path / 'keliu.db'}"]):
        res = subprocess.run(replay_argv(capture, "--max", *extra), env=sensor_env(tmp_path, url, batch=1000), cwd=tmp_path,
                             capture_output=True, timeout=180, check=False)
        assert res.returncode == 0, res.stderr
        (tmp_path / f"stdout{i}.log").write_bytes(res.stdout)
        (tmp_path / f"stderr{i}.log").write_bytes(res.stderr)
        if i == 0:
            assert list((tmp_path / "spool" / "demo-store-sensor-1").glob("[0-9]*.json"))
            for p in (tmp_path / "spool").rglob("*.json"):  # keep a copy of the spool as it was
                (tmp_path / f"spool-copy-{p.name}").write_bytes(p.read_bytes())


def assert_no_macs(tmp_path: Path, capture: Path, fcs: str = "verify") -> int:
    macs = {p.mac for p in Parser(fcs).parse_capture(capture.read_bytes())}  # type: ignore[arg-type]
    files = produced(tmp_path)
    assert any(name.endswith("keliu.db") for name in files)
    assert any("spool-copy" in name for name in files)
    for name, data in files.items():
        for mac in macs:
            for form in mac_forms(mac):
                assert form not in data, f"{name} holds the MAC {mac.hex()} as {form!r}"
    return len(macs)


def test_replay_leaves_no_mac_anywhere(tmp_path: Path) -> None:
    capture = tmp_path / "short.pcap"
    short_capture(capture)
    run_twice(tmp_path, capture)
    assert assert_no_macs(tmp_path, capture) > 40


@pytest.mark.parametrize("name", ["pintor-cagliari__B-ts-2021-Jun-03-h15-m34-s17-modePA-ch-11-th-60.pcap"])
def test_real_capture_leaves_no_mac_anywhere(tmp_path: Path, name: str) -> None:
    source = require_shared_data(name)
    capture = tmp_path / "real.pcap"
    capture.write_bytes(source.read_bytes())
    run_twice(tmp_path, capture)
    assert assert_no_macs(tmp_path, capture) == 80
