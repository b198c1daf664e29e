"""``keliu router``: render with CliRunner; allow/revoke/clients/status as real processes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from keliu.testing.internet import INTERNET_PREFIX, PORTAL_PREFIX
from router_config import render
from router_config.cli import router
from router_config.config import RouterConfig
from router_config.model import policy_from
from tests.router_config.phones import curl, open_bench


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("KELIU_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def keliu(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KELIU_")}
    return subprocess.run([sys.executable, "-m", "keliu.cli", "router", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_render_prints_the_three_files(clean_env: Path) -> None:
    out = CliRunner().invoke(router, ["render"])
    assert out.exit_code == 0, out.output
    assert out.output.count("# ---- ") == 3
    assert "table inet keliu {" in out.output
    assert "dhcp-option=114," in out.output
    assert "utf8_ssid=1" in out.output


def test_render_out_writes_what_render_returns(clean_env: Path) -> None:
    (clean_env / "keliu.toml").write_text('[router]\nwalled_garden_domains = ["pay.example.com"]\n')
    out = CliRunner().invoke(router, ["render", "--out", "etc"])
    assert out.exit_code == 0, out.output
    from keliu import config

    cfg = config.load()
    p = policy_from(cfg.router, cfg.portal)
    assert (clean_env / "etc" / "keliu.nft").read_text() == render.nftables(p)
    assert (clean_env / "etc" / "dnsmasq.conf").read_text() == render.dnsmasq(p)
    assert "nftset=/pay.example.com/4#inet#keliu#garden_dns" in (clean_env / "etc" / "dnsmasq.conf").read_text()


def test_a_bad_mac_is_one_line_and_non_zero(tmp_path: Path) -> None:
    out = keliu("allow", "--netns", "klr-none", "nonsense", "10.77.0.9", cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.startswith("keliu: client: not a MAC address: 'nonsense'")
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_allow_clients_status_revoke_from_the_command_line(tmp_path: Path) -> None:
    bench = open_bench("klrc", phones=1, cfg=RouterConfig())
    try:
        ph = bench.phone(0)
        allowed = keliu("allow", "--netns", bench.router, ph.mac, ph.ip, "--minutes", "5", cwd=tmp_path)
        assert allowed.returncode == 0, allowed.stderr
        # the process that allowed is gone; the phone stays online (the set lives in the kernel)
        assert curl(bench, 0, "http://www.example.com/").stdout.startswith(INTERNET_PREFIX)
        listed = keliu("clients", "--netns", bench.router, cwd=tmp_path)
        assert listed.stdout.split()[:2] == [ph.mac, ph.ip]
        assert "1 client(s)" in keliu("status", "--netns", bench.router, cwd=tmp_path).stdout
        revoked = keliu("revoke", "--netns", bench.router, ph.mac, cwd=tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        assert curl(bench, 0, "http://www.example.com/").stdout.startswith(PORTAL_PREFIX)
        assert keliu("clients", "--netns", bench.router, cwd=tmp_path).stdout == ""
    finally:
        bench.stop()
