"""The rendered files are accepted by the real programs: ``dnsmasq --test`` and ``nft -c`` in a namespace."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from router_config import render
from tests.conftest import require_root_netns, require_tool
from tests.router_config.test_render import POLICIES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_dnsmasq_accepts_the_config(name: str, tmp_path: Path) -> None:
    dnsmasq = require_tool("dnsmasq")
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(render.dnsmasq(POLICIES[name]), encoding="utf-8")
    out = subprocess.run([dnsmasq, "--test", f"--conf-file={conf}"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "syntax check OK" in out.stderr


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_kernel_accepts_the_table_twice(name: str, tmp_path: Path) -> None:
    require_root_netns()
    nft = require_tool("nft")
    script = tmp_path / "keliu.nft"
    script.write_text(render.apply_script(POLICIES[name]), encoding="utf-8")
    ns = f"klrk{name[:4]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for _ in range(2):  # the second apply must succeed on the existing table (idempotent)
            out = subprocess.run(["ip", "netns", "exec", ns, nft, "-f", str(script)],
                                 capture_output=True, text=True, check=False)
            assert out.returncode == 0, out.stderr
        listed = subprocess.run(["ip", "netns", "exec", ns, nft, "list", "table", "inet", "keliu"],
                                capture_output=True, text=True, check=True).stdout
        assert listed.count("chain ") == render.nftables(POLICIES[name]).count("chain ")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
