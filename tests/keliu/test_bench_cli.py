"""``keliu bench up|down``: the network-namespace test bench by hand, as real processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keliu.testing.netbench import Bench
from tests.conftest import require_root_netns, require_tool


def keliu_bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    return subprocess.run([sys.executable, "-m", "keliu.cli", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.integration
def test_bench_up_and_down(tmp_path: Path) -> None:
    require_root_netns()
    for tool in ("nft", "dnsmasq", "busybox"):
        require_tool(tool)
    up = keliu_bench("up", "--prefix", "klrb", "--phones", "1", cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert {"klrb-rtr", "klrb-inet", "klrb-ph0"} <= {line.split()[0] for line in listing.splitlines()}
        assert "phone 0: klrb-ph0" in up.stdout
    finally:
        down = keliu_bench("down", "--prefix", "klrb", cwd=tmp_path)
    assert down.stdout.strip() == "removed"
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(line.startswith("klrb-") for line in listing.splitlines())
    assert not Bench.down("klrb")
