"""Deterministic NAT in real namespaces: every connection of a phone leaves the WAN from its own port block."""
from __future__ import annotations

import sys
import time

import pytest

from keliu.gate import AllowClient
from keliu.testing.netbench import WAN_INET, WAN_ROUTER, Bench
from router_config import portblock
from tests.router_config.phones import open_bench

pytestmark = [pytest.mark.integration, pytest.mark.netns]

# the internet's side: prints the address and port each connection comes from
PEERS = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7100))
s.listen(64)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    print(peer[0], peer[1], flush=True)
    c.close()
"""
# the phone's side: N connections, one after another
CONNECT = """
import socket, sys
for _ in range(int(sys.argv[1])):
    c = socket.create_connection((sys.argv[2], 7100), timeout=3)
    c.recv(1)
    c.close()
"""


@pytest.fixture
def bench() -> object:
    b = open_bench("klp", phones=2)
    try:
        yield b
    finally:
        b.stop()


def test_each_phone_leaves_from_its_own_port_block(bench: Bench) -> None:
    import subprocess

    listing = bench.run(bench.router, ["nft", "list", "chain", "inet", "keliu", "nat_blocks"], check=True).stdout
    assert "masquerade to :1654-1716" in listing  # 10.77.0.10, the first DHCP address
    server = bench.popen(bench.inet, [sys.executable, "-c", PEERS], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    with server.stdout:
        assert server.stdout.readline().strip() == "ready"
        for i in (0, 1):
            ph = bench.phone(i)
            bench.gate().execute(AllowClient(ph.mac, ph.ip, time.time() + 600))
            bench.run(f"{bench.prefix}-ph{i}", [sys.executable, "-c", CONNECT, "5", WAN_INET], check=True)
        seen = [server.stdout.readline().split() for _ in range(10)]
    for i in (0, 1):
        lo, hi = portblock.block(bench.cfg.lan_cidr, bench.phone(i).ip) or (0, 0)
        ports = [int(p) for addr, p in seen[i * 5:(i + 1) * 5]]
        assert all(addr == WAN_ROUTER for addr, _ in seen[i * 5:(i + 1) * 5])
        assert all(lo <= p <= hi for p in ports), (bench.phone(i).ip, lo, hi, ports)
