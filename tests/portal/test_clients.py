"""clients: the MAC comes from the kernel's neighbour table (pyroute2), in a network namespace of our own."""
from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import ClassVar

import pytest

from portal.edges.clients import Neighbours, device_of, pseudo_mac, resolve
from portal.errors import UnknownClient
from tests.conftest import ROOT, require_root_netns

KEY = b"k" * 32


def test_pseudo_mac_is_stable_local_and_unicast() -> None:
    mac = pseudo_mac(KEY, "127.0.0.1")
    assert mac == pseudo_mac(KEY, "127.0.0.1") != pseudo_mac(KEY, "127.0.0.2")
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01


def test_resolve_refuses_an_unknown_address_with_the_nft_gate() -> None:
    with pytest.raises(UnknownClient):
        resolve("10.0.0.9", lambda ip: None, "nft", KEY)
    assert resolve("10.0.0.9", lambda ip: "02:00:00:00:00:09", "nft", KEY).device_id == device_of(
        KEY, "02:00:00:00:00:09")


def test_device_id_is_the_hmac_not_the_mac() -> None:
    d = device_of(KEY, "3C:22:FB:00:00:01")
    assert d == device_of(KEY, "3c:22:fb:00:00:01") and len(d) == 16 and "3c22fb" not in d


@pytest.fixture
def netns() -> Iterator[str]:
    require_root_netns()
    name = f"klpn{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for argv in (["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
                     ["link", "set", "lan0", "up"], ["link", "set", "lan1", "up"],
                     ["addr", "add", "10.9.0.1/24", "dev", "lan0"],
                     ["neigh", "add", "10.9.0.5", "lladdr", "02:6b:00:00:00:05", "dev", "lan0", "nud", "reachable"],
                     ["neigh", "add", "10.9.0.6", "dev", "lan0", "nud", "failed"],
                     # a second LAN (another guest VLAN): found through the route to it
                     ["link", "add", "lan2", "type", "veth", "peer", "name", "lan3"],
                     ["link", "set", "lan2", "up"], ["link", "set", "lan3", "up"],
                     ["addr", "add", "10.9.1.1/24", "dev", "lan2"],
                     ["neigh", "add", "10.9.1.5", "lladdr", "02:6b:00:00:01:05", "dev", "lan2", "nud", "stale"]):
            subprocess.run(["ip", "-n", name, *argv], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.integration
@pytest.mark.netns
def test_neighbour_table_lookup(netns: str) -> None:
    code = ("from portal.edges.clients import Neighbours\nn = Neighbours()\n"
            "print(n.lookup('10.9.0.5'), n.lookup('10.9.0.6'), n.lookup('10.9.0.7'), n.lookup('10.9.1.5'),"
            " n.lookup('10.9.0.5'), n.lookup('127.0.0.1'), n.lookup('192.0.2.1'))")
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["02:6b:00:00:00:05", "None", "None", "02:6b:00:00:01:05", "02:6b:00:00:00:05",
                                  "None", "None"]


def test_neighbours_asks_the_kernel_once_per_ttl_and_a_miss_again_after_50_ms() -> None:
    class Counting(Neighbours):
        queries: ClassVar[list[str]] = []
        table: ClassVar[dict[str, str]] = {}

        def _query(self, ip: str) -> str | None:
            self.queries.append(ip)
            return self.table.get(ip)

    t = [0.0]
    n = Counting(ttl=1.0, clock=lambda: t[0])
    assert n.lookup("10.0.0.1") is None and Counting.queries == ["10.0.0.1"]
    Counting.table = {"10.0.0.1": "02:00:00:00:00:01", "10.0.0.2": "02:00:00:00:00:02"}
    assert n.lookup("10.0.0.1") is None  # within 50 ms: the miss holds
    t[0] = 0.06
    assert n.lookup("10.0.0.1") == "02:00:00:00:00:01"
    assert n.lookup("10.0.0.2") == "02:00:00:00:00:02"  # one address asked for, not the table
    t[0] = 1.0
    assert n.lookup("10.0.0.1") == "02:00:00:00:00:01" and n.lookup("10.0.0.2") == "02:00:00:00:00:02"
    assert Counting.queries == ["10.0.0.1", "10.0.0.1", "10.0.0.2"]  # hits within the ttl: remembered
    t[0] = 1.1
    assert n.lookup("10.0.0.1") == "02:00:00:00:00:01" and Counting.queries[-1] == "10.0.0.1"
