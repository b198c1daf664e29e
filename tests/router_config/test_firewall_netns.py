"""The firewall in real namespaces: a router with the rendered table and dnsmasq, DHCP phones, an internet.

Every test builds its own bench (about half a second) so that no test sees another's clients.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from keliu.gate import AllowClient, ReleaseTemporarily, RevokeClient
from keliu.testing.internet import APPLE_SUCCESS, INTERNET_PREFIX, PORTAL_PREFIX, WINDOWS_TEXT
from keliu.testing.netbench import NAMES, STATE_DIR, WAN_ROUTER, Bench, wait_port
from router_config import nft
from router_config.gate import NftGate
from tests.router_config.phones import bench_cfg, curl, open_bench

pytestmark = pytest.mark.integration

EXAMPLE = "www.example.com"

UDP_LISTEN = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", PORT))
s.settimeout(1.5)
print("ready", flush=True)
try:
    s.recvfrom(100)
    print("got")
except OSError:
    print("none")
"""
UDP_SEND = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    s.sendto(b"quic", ("HOST", PORT))
    time.sleep(0.1)
"""
ECHO_SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000))
s.listen()
while True:
    c, _ = s.accept()
    while d := c.recv(100):
        c.sendall(d)
"""
# talks to the echo server every 100 ms; prints "open" once it works and "cut ..." when the connection dies
ECHO_CLIENT = """
import socket, sys, time
c = socket.create_connection(("HOST", 7000), timeout=3)
for i in range(100):
    try:
        c.sendall(b"x")
        assert c.recv(10) == b"x"
    except OSError as e:
        print("cut", i, type(e).__name__)
        sys.exit(0)
    if i == 3:
        print("open", flush=True)
    time.sleep(0.1)
print("never cut")
"""

# tells each client the address it came from
PEER_SERVER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7001))
s.listen()
while True:
    c, addr = s.accept()
    c.sendall(addr[0].encode() + b"\\n")
    c.close()
"""


def allow(bench: Bench, i: int, seconds: float = 600) -> None:
    ph = bench.phone(i)
    bench.gate().execute(AllowClient(ph.mac, ph.ip, time.time() + seconds))


def test_dhcp_gives_an_address_the_router_and_the_captive_api(bench: Bench) -> None:
    ph = bench.phone(0)
    assert ph.ip.startswith("10.77.") and ph.ip != bench.cfg.portal_ip
    assert ph.captive_api == bench.policy.api_url
    assert ph.dns == bench.cfg.portal_ip
    assert bench.phone(1).ip != ph.ip


def test_dns_works_before_login(bench: Bench) -> None:
    out = bench.run(bench.phone(0).ns, ["getent", "ahostsv4", EXAMPLE])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == NAMES[EXAMPLE]
    portal = bench.run(bench.phone(0).ns, ["getent", "ahostsv4", bench.cfg.portal_name])
    assert portal.stdout.split()[0] == bench.cfg.portal_ip


@pytest.mark.parametrize("url", [f"http://{EXAMPLE}/page", "http://connectivitycheck.gstatic.com/generate_204",
                                 "http://captive.apple.com/hotspot-detect.html"])
def test_unauthorized_http_goes_to_the_portal(bench: Bench, url: str) -> None:
    out = curl(bench, 0, url)
    assert out.returncode == 0, out.stderr
    host_and_path = url.split("://", 1)[1]
    assert out.stdout == f"{PORTAL_PREFIX}{host_and_path}\n"


def test_unauthorized_https_is_reset_not_intercepted(bench: Bench) -> None:
    out = curl(bench, 0, f"https://{EXAMPLE}/")
    assert out.returncode == 7, out.stderr  # 7: could not connect (refused by the reset), not 28 (timeout)


def _udp_reaches_internet(bench: Bench, i: int, port: int) -> bool:
    """Send UDP datagrams from phone i to the internet; True if any arrives."""
    listener = bench.popen(bench.inet, [sys.executable, "-c", UDP_LISTEN.replace("PORT", str(port))],
                           stdout=subprocess.PIPE, text=True)
    assert listener.stdout is not None
    assert listener.stdout.readline().strip() == "ready"
    send = UDP_SEND.replace("HOST", NAMES[EXAMPLE]).replace("PORT", str(port))
    bench.run(bench.phone(i).ns, [sys.executable, "-c", send])
    out, _ = listener.communicate(timeout=10)
    return bool(out.strip() == "got")


def test_quic_is_dropped_before_login_and_passes_after(bench: Bench) -> None:
    assert not _udp_reaches_internet(bench, 0, 443)
    allow(bench, 0)
    assert _udp_reaches_internet(bench, 0, 443)


def test_walled_garden_name_opens_once_resolved_through_dnsmasq(bench: Bench) -> None:
    garden = NAMES["garden.test"]
    before = curl(bench, 0, "https://garden.test/", "--resolve", f"garden.test:443:{garden}")
    assert before.returncode == 7, before.stderr
    resolved = bench.run(bench.phone(0).ns, ["getent", "ahostsv4", "garden.test"])
    assert resolved.stdout.split()[0] == garden
    after = curl(bench, 0, "https://garden.test/x")
    assert after.returncode == 0, after.stderr
    assert after.stdout == f"{INTERNET_PREFIX}garden.test/x\n"
    # only the garden opened: the rest of the internet is still closed
    assert curl(bench, 0, f"https://{EXAMPLE}/").returncode == 7


def test_allow_opens_the_internet_with_probe_answers_and_counts_bytes(bench: Bench) -> None:
    allow(bench, 0)
    assert curl(bench, 0, f"https://{EXAMPLE}/a").stdout == f"{INTERNET_PREFIX}{EXAMPLE}/a\n"
    assert curl(bench, 0, "http://captive.apple.com/hotspot-detect.html").stdout == APPLE_SUCCESS
    assert curl(bench, 0, "http://www.msftconnecttest.com/connecttest.txt").stdout == WINDOWS_TEXT
    android = curl(bench, 0, "http://connectivitycheck.gstatic.com/generate_204", "-o", "/dev/null",
                   "-w", "%{http_code}")
    assert android.stdout == "204"
    # the other phone is still captive
    assert curl(bench, 1, f"http://{EXAMPLE}/b").stdout.startswith(PORTAL_PREFIX)
    (client,) = bench.gate().clients()
    assert (client.mac, client.ip) == (bench.phone(0).mac, bench.phone(0).ip)
    assert client.bytes_up > 0 and client.bytes_down > 0
    assert client.expires_in is not None and 0 < client.expires_in <= 600


def test_the_internet_sees_the_routers_wan_address_not_the_phones(bench: Bench) -> None:
    """NAT: the table masquerades the LAN on router.wan_iface (the bench's internet could route the LAN back,
    so only the source address tells)."""
    allow(bench, 0)
    server = bench.popen(bench.inet, [sys.executable, "-c", PEER_SERVER])
    try:
        wait_port(bench.inet, NAMES[EXAMPLE], 7001)
        ask = f"import socket; print(socket.create_connection(('{NAMES[EXAMPLE]}', 7001), timeout=5).recv(100).decode())"
        peer = bench.run(bench.phone(0).ns, [sys.executable, "-c", ask])
    finally:
        server.kill()
    assert peer.stdout.strip() == WAN_ROUTER != bench.phone(0).ip, peer.stderr


def test_revoke_cuts_an_open_connection_and_redirects_again(bench: Bench) -> None:
    allow(bench, 0)
    # an open connection: the phone keeps talking to an echo server on the internet
    echo = bench.popen(bench.inet, [sys.executable, "-c", ECHO_SERVER])
    wait_port(bench.inet, NAMES[EXAMPLE], 7000)
    client = bench.popen(bench.phone(0).ns, [sys.executable, "-c", ECHO_CLIENT.replace("HOST", NAMES[EXAMPLE])],
                         stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "open"
    bench.gate().execute(RevokeClient(bench.phone(0).mac))
    out, _ = client.communicate(timeout=15)
    echo.kill()
    assert out.startswith("cut "), out
    assert "ConnectionResetError" in out
    assert curl(bench, 0, f"http://{EXAMPLE}/again").stdout == f"{PORTAL_PREFIX}{EXAMPLE}/again\n"
    assert bench.gate().clients() == []


def test_revoke_deletes_the_clients_conntrack_entries(bench: Bench) -> None:
    allow(bench, 0)
    assert curl(bench, 0, f"http://{EXAMPLE}/").returncode == 0
    ip = bench.phone(0).ip

    def entries() -> str:
        return str(bench.run(bench.router, ["conntrack", "-L", "-p", "tcp", "-s", ip]).stdout)

    assert ip in entries()
    bench.gate().execute(RevokeClient(bench.phone(0).mac))
    assert ip not in entries()


def test_conntrack_fallback_without_kernel_filtered_flush(bench: Bench) -> None:
    from router_config.conntrack import Conntrack

    assert curl(bench, 0, f"http://{EXAMPLE}/").returncode == 0
    assert curl(bench, 1, f"http://{EXAMPLE}/").returncode == 0
    ct = Conntrack(bench.router)
    ct._flush_supported = False  # as on a kernel older than filtered flushes
    try:
        ct.forget(bench.phone(0).ip)
    finally:
        ct.close()
    listing = bench.run(bench.router, ["conntrack", "-L", "-p", "tcp"]).stdout
    assert f"src={bench.phone(0).ip} " not in listing
    assert f"src={bench.phone(1).ip} " in listing


def test_element_timeout_sends_the_phone_back_to_the_portal(bench: Bench) -> None:
    allow(bench, 0, seconds=2)
    assert curl(bench, 0, f"http://{EXAMPLE}/t").stdout == f"{INTERNET_PREFIX}{EXAMPLE}/t\n"
    time.sleep(2.5)
    assert curl(bench, 0, f"http://{EXAMPLE}/t").stdout == f"{PORTAL_PREFIX}{EXAMPLE}/t\n"


def test_restart_reconcile_restores_exactly_the_unexpired_clients(bench: Bench) -> None:
    now = time.time()
    p0, p1 = bench.phone(0), bench.phone(1)
    allow(bench, 1)  # a client the portal no longer has a session for
    bench.gate().close()  # the portal dies ...
    bench._gate = None
    assert curl(bench, 1, f"http://{EXAMPLE}/").stdout.startswith(INTERNET_PREFIX)  # ... the network stays
    with NftGate(bench.policy, netns=bench.router) as fresh:  # ... and starts again
        fresh.reconcile([AllowClient(p0.mac, p0.ip, now + 600), AllowClient(p1.mac, p1.ip, now - 5)])
        assert [(c.mac, c.ip) for c in fresh.clients()] == [(p0.mac, p0.ip)]
    assert curl(bench, 0, f"http://{EXAMPLE}/").stdout.startswith(INTERNET_PREFIX)
    assert curl(bench, 1, f"http://{EXAMPLE}/x").stdout == f"{PORTAL_PREFIX}{EXAMPLE}/x\n"


def test_a_phone_copying_an_authorized_ip_but_not_its_mac_gets_nothing(bench: Bench) -> None:
    allow(bench, 0)
    assert curl(bench, 0, f"https://{EXAMPLE}/").returncode == 0
    victim, thief = bench.phone(0), bench.phone(1)
    bench.run(thief.ns, ["ip", "-4", "addr", "flush", "dev", "eth0"], check=True)
    bench.run(thief.ns, ["ip", "addr", "add", f"{victim.ip}/22", "dev", "eth0"], check=True)
    bench.run(thief.ns, ["ip", "route", "replace", "default", "via", bench.cfg.portal_ip], check=True)
    bench.set_phone(1, ip=victim.ip)
    https = curl(bench, 1, f"https://{EXAMPLE}/")
    assert https.returncode != 0
    assert not https.stdout.startswith(INTERNET_PREFIX)
    http = curl(bench, 1, f"http://{EXAMPLE}/")
    assert not http.stdout.startswith(INTERNET_PREFIX)
    assert not _udp_reaches_internet(bench, 1, 5353)


def test_temporary_release_opens_only_the_release_hosts_to_that_phone(bench: Bench) -> None:
    for i in (0, 1):
        bench.run(bench.phone(i).ns, ["getent", "ahostsv4", "wx.qq.com"])  # dnsmasq fills release_dns
    ph = bench.phone(0)
    bench.gate().execute(ReleaseTemporarily(ph.mac, ph.ip, time.time() + 60))
    assert curl(bench, 0, "https://wx.qq.com/r").stdout == f"{INTERNET_PREFIX}wx.qq.com/r\n"
    assert curl(bench, 0, f"https://{EXAMPLE}/").returncode == 7
    assert curl(bench, 1, "https://wx.qq.com/r").returncode == 7
    bench.gate().execute(RevokeClient(ph.mac))
    assert curl(bench, 0, "https://wx.qq.com/r").returncode == 7


def test_apply_again_keeps_clients_and_other_tables(bench: Bench) -> None:
    bench.run(bench.router, ["nft", "add table inet other; add chain inet other c; add rule inet other c accept"],
              check=True)
    allow(bench, 0)
    nft.apply(bench.policy, bench.router)
    nft.apply(bench.policy, bench.router)
    assert "chain c" in bench.run(bench.router, ["nft", "list", "table", "inet", "other"]).stdout
    assert [c.mac for c in bench.gate().clients()] == [bench.phone(0).mac]
    assert curl(bench, 0, f"http://{EXAMPLE}/").stdout.startswith(INTERNET_PREFIX)


@pytest.fixture
def bench_v6_block() -> object:
    # phone 1 is a trusted staff device: it proves IPv6 routing works, so a failure for phone 0 is the firewall
    b = open_bench("klr6", cfg=bench_cfg(trusted_macs=[Bench("klr6").phone_mac(1)]))
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def bench_v6_handle() -> object:
    b = open_bench("klr7", cfg=bench_cfg(ipv6="handle"))
    try:
        yield b
    finally:
        b.stop()


def _v6(bench: Bench, i: int, scheme: str = "https") -> str:
    return curl(bench, i, f"{scheme}://[2001:db8:5::20]/v6", "-6", "-k").stdout


def test_ipv6_bypass_is_impossible_in_block_mode(bench_v6_block: Bench) -> None:
    b = bench_v6_block
    assert _v6(b, 1) == f"{INTERNET_PREFIX}[2001:db8:5::20]/v6\n"  # the path works (trusted device)
    assert _v6(b, 0) == ""
    assert _v6(b, 0, "http") == ""
    allow(b, 0)
    assert _v6(b, 0) == ""  # "block": no IPv6 for guests, even logged in


def test_ipv6_in_handle_mode_needs_a_login(bench_v6_handle: Bench) -> None:
    b = bench_v6_handle
    assert _v6(b, 0) == ""
    assert _v6(b, 0, "http") == ""
    allow(b, 0)
    assert _v6(b, 0) == f"{INTERNET_PREFIX}[2001:db8:5::20]/v6\n"
    assert _v6(b, 1) == ""
    b.gate().execute(RevokeClient(b.phone(0).mac))
    assert _v6(b, 0) == ""


def test_a_rate_limited_policy_applies_in_the_kernel(bench: Bench) -> None:
    from router_config.model import Policy

    limited = Policy(bench_cfg(rate_up_kbit=800, rate_down_kbit=800), portal_port=bench.policy.portal_port)
    nft.apply(limited, bench.router, replace=True)
    with NftGate(limited, netns=bench.router) as gate:
        ph = bench.phone(0)
        gate.execute(AllowClient(ph.mac, ph.ip, time.time() + 60))
        assert curl(bench, 0, f"http://{EXAMPLE}/").stdout.startswith(INTERNET_PREFIX)
    listing = bench.run(bench.router, ["nft", "list", "set", "inet", "keliu", "rate_up"]).stdout
    assert ph.ip in listing
    # switching the limits off again removes their chain and sets, and keeps the client
    nft.apply(bench.policy, bench.router)
    table = bench.run(bench.router, ["nft", "list", "table", "inet", "keliu"]).stdout
    assert "rate_up" not in table and "client_down" not in table
    assert ph.mac in bench.run(bench.router, ["nft", "list", "set", "inet", "keliu", "allowed"]).stdout


def test_bench_tidies_up_after_itself() -> None:
    b = open_bench("klr8", phones=1)
    names, tmp = [b.router, b.inet, b.phone(0).ns], b.tmp
    assert tmp.is_dir()
    b.stop()
    listing = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    assert not any(n in listing.split() for n in names)
    assert not any(Path("/etc/netns", n).exists() for n in names)
    assert not (STATE_DIR / "klr8.json").exists()
    assert not tmp.exists()


def test_a_gate_without_the_table_says_to_apply_it(bench: Bench) -> None:
    from router_config.errors import NftError

    with nft.Nft(bench.router) as ctx:
        ctx.run("delete table inet keliu")
    with pytest.raises(NftError, match="keliu router apply"):
        NftGate(bench.policy, netns=bench.router)
