"""A cloned MAC against the real thing (portal.core.binding): the netns bench's dnsmasq gives the phones their leases,
``keliu portal`` runs with the nft Gate and reads dnsmasq's lease file, and a second namespace takes the logged-in
phone's MAC.

Each test gets its own bench: a clone leaves leases and bridge entries behind that another test must not inherit.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keliu.gate import RevokeClient
from tests.portal.test_e2e import curl, curl_login, running_portal

pytestmark = [pytest.mark.integration, pytest.mark.netns]


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Any]:
    with running_portal("klm", tmp_path) as b:
        yield b


def dhcp(bench: Any, i: int, *options: str) -> str:
    """Run busybox udhcpc in phone ``i``'s namespace as the bench does (with extra ``options``); its new IPv4."""
    lease = bench.tmp / f"lease-again{i}"
    lease.unlink(missing_ok=True)
    r = bench.run(bench.phone(i).ns, ["env", f"KLR_LEASE={lease}", "busybox", "udhcpc", "-i", "eth0", "-f", "-q",
                                      "-n", "-t", "10", "-T", "1", "-s", str(bench.tmp / "udhcpc.sh"), *options])
    assert r.returncode == 0, r.stderr
    ip = str(dict(line.split("=", 1) for line in lease.read_text().splitlines() if "=" in line)["ip"])
    bench.set_phone(i, ip=ip)
    return ip


def link(bench: Any, i: int, *args: str) -> None:
    bench.run(bench.phone(i).ns, ["ip", "link", "set", "eth0", *args], check=True)


def gate_pairs(bench: Any) -> set[tuple[str, str]]:
    return {(c.mac, c.ip) for c in bench.gate().clients()}


def splash_answer(bench: Any, i: int, url: str) -> tuple[int, str]:
    status, _body, location = curl(bench, i, url)
    return status, location


def page(bench: Any, i: int, url: str) -> tuple[int, str]:
    status, body, _location = curl(bench, i, url)
    return status, body.strip()


def logins(bench: Any) -> list[str]:
    with sqlite3.connect(bench.tmpdir / "keliu.db") as db:
        return [m for (m,) in db.execute("SELECT method FROM logins ORDER BY id")]


def test_a_clone_of_a_logged_in_mac_at_another_address_stays_captive(bench: Any) -> None:
    victim = bench.phone(0)
    assert curl_login(bench, 0, "13812345678", "138****5678")[0] == 303
    assert page(bench, 0, "http://www.example.com/") == (200, "internet www.example.com/")
    # phone 1 takes the victim's MAC and asks dnsmasq for an address with its own DHCP client id
    link(bench, 1, "address", victim.mac)
    clone_ip = dhcp(bench, 1, "-x", "0x3d:01deadbeef0001", "-x", "hostname:clone")
    assert clone_ip != victim.ip
    for url in ("http://www.example.com/", "http://connectivitycheck.gstatic.com/generate_204",
                "http://www.example.com/again"):
        assert splash_answer(bench, 1, url) == (302, bench.base + "/")  # never the internet
    assert (victim.mac, clone_ip) not in gate_pairs(bench)
    assert (victim.mac, victim.ip) in gate_pairs(bench)
    out = bench.out.read_text()
    assert "heal refused: device " in out and f"at {clone_ip} (session at {victim.ip}): other_ip" in out
    assert victim.mac not in out and victim.mac.replace(":", "") not in out
    # the phone that logged in is still online
    assert page(bench, 0, "http://www.example.com/") == (200, "internet www.example.com/")


def test_remember_this_device_refuses_a_clone_on_the_same_lease_with_another_dhcp_client(bench: Any) -> None:
    victim = bench.phone(0)
    ip = dhcp(bench, 0, "-x", "hostname:zhangs-phone")  # a phone names itself; renewed, the same address
    assert ip == victim.ip
    assert curl_login(bench, 0, "13812345678", "138****5678", "&reauth=1")[0] == 303
    # the session expired (as the sweep would end it and the Gate's element would time out); the phone leaves
    with sqlite3.connect(bench.tmpdir / "keliu.db") as db:
        db.execute("UPDATE portal_sessions SET until = started_at")
    bench.gate().execute(RevokeClient(victim.mac))
    link(bench, 0, "down")
    # a device takes its MAC and gets its address from dnsmasq (which keys the lease by the MAC when no client
    # id is sent), with its own host name on the lease
    link(bench, 1, "address", victim.mac)
    assert dhcp(bench, 1, "-C", "-x", "hostname:clone") == victim.ip
    assert splash_answer(bench, 1, "http://connectivitycheck.gstatic.com/generate_204") == (302, bench.base + "/")
    assert splash_answer(bench, 1, "http://www.example.com/") == (302, bench.base + "/")
    assert logins(bench) == ["sms"]
    assert victim.mac not in {m for m, _ip in gate_pairs(bench)}
    assert ": lease_changed" in bench.out.read_text()
    # the clone leaves, the phone comes back and renews its lease on the same address: re-authorized, no SMS
    link(bench, 1, "down")
    link(bench, 0, "up")
    assert dhcp(bench, 0, "-x", "hostname:zhangs-phone") == victim.ip
    # (the address answered captive a moment ago: the captive front and the portal remember that for a second)
    deadline = time.monotonic() + 15
    while (status := curl(bench, 0, "http://connectivitycheck.gstatic.com/generate_204")[0]) != 204:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert logins(bench) == ["sms", "reauth"]
    assert page(bench, 0, "http://www.example.com/") == (200, "internet www.example.com/")
    assert "13812345678" not in bench.out.read_text()

