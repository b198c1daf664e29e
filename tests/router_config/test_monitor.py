"""The sensor's monitor-mode interface through nl80211 (needs a wireless driver; skips, with the reason, without)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from router_config import monitor
from router_config.errors import MonitorError

pytestmark = pytest.mark.integration


def test_a_phy_that_does_not_exist_is_a_monitor_error_that_says_why() -> None:
    with pytest.raises(MonitorError) as err:
        monitor.create("klrmon9", phy=999)
    assert "klrmon9" in str(err.value)
    assert ("nl80211" in str(err.value)) or ("phy999" in str(err.value))


def test_create_and_remove_a_monitor_interface() -> None:
    reason = monitor.unavailable(0)
    if reason is not None:
        # the one path of the router allowed to skip: there is no radio on this machine
        print(f"monitor-mode test skipped: {reason}")
        pytest.skip(f"no wireless hardware: {reason} (try `modprobe mac80211_hwsim`)")
    try:
        index = monitor.create("klrmon0", phy=0)
        assert index > 0
        assert monitor.create("klrmon0", phy=0) == index  # idempotent
        info = subprocess.run(["iw", "dev", "klrmon0", "info"], capture_output=True, text=True, check=True)
        assert "type monitor" in info.stdout
    finally:
        monitor.remove("klrmon0")
    assert not monitor.remove("klrmon0")


def test_phys_are_read_from_sysfs(tmp_path: Path) -> None:
    for name, index in (("phy0", 0), ("phy3", 3)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index").write_text(f"{index}\n")
    assert monitor.phys(tmp_path) == [0, 3]
    with pytest.raises(MonitorError, match="no wireless driver"):
        monitor.phys(tmp_path / "absent")
