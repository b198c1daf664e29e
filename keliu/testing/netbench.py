"""The network-namespace bench: a router, an "internet" and DHCP phones in network namespaces (edge).

::

    <p>-ph0  eth0 (DHCP) ─┐                     <p>-rtr                              <p>-inet
    <p>-ph1  eth0 (DHCP) ─┼─ <p>l<i> ── br-lan 10.77.0.1/22 │ eth0 203.0.113.2 ── eth0 203.0.113.1
          …               ┘   (bridge ports)  2001:db8:77::1 │      2001:db8:ffff::2   2001:db8:ffff::1
                              inet keliu table, dnsmasq (DHCP+DNS)                   lo: 198.51.100.x, 2001:db8:5::x
                                                                                     HTTP 80, HTTPS 443, DNS 53

The router's interfaces carry the names of the router config (``br-lan``, ``eth0`` by default): interface names
are per namespace, and only the phones' bridge ports (``<p>l<i>``) carry the prefix. Every namespace is named
``<prefix>-…`` and the bench deletes only what its own state file (``/run/keliu-bench/<prefix>.json``) lists.

Phones get their IPv4 by DHCP from the router's dnsmasq (busybox ``udhcpc``, asking for option 114) and a static
IPv6 address with a default route via the router, as a phone would after SLAAC, so that tests can try IPv6.
The internet's names (:data:`NAMES`) resolve through the router's dnsmasq, which forwards to the internet's.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import netaddr

from router_config import model as m
from router_config import nft, render
from router_config.config import RouterConfig
from router_config.errors import BenchError
from router_config.gate import NftGate
from router_config.nft import in_netns

STATE_DIR = Path("/run/keliu-bench")
WAN_ROUTER, WAN_INET = "203.0.113.2", "203.0.113.1"
WAN6_ROUTER, WAN6_INET = "2001:db8:ffff::2", "2001:db8:ffff::1"
LAN6_ROUTER = "2001:db8:77::1"

#: names the internet answers, each on its own address (so that opening one never opens another)
NAMES: dict[str, str] = {
    "connectivitycheck.gstatic.com": "198.51.100.10",
    "captive.apple.com": "198.51.100.11",
    "www.msftconnecttest.com": "198.51.100.12",
    "detectportal.firefox.com": "198.51.100.13",
    "connect.rom.miui.com": "198.51.100.14",
    "www.example.com": "198.51.100.20",
    "news.example.com": "198.51.100.21",
    "garden.test": "198.51.100.30",
    "wx.qq.com": "198.51.100.40",
}


def ip6_of(ip4: str) -> str:
    """The internet's IPv6 address for one of its IPv4 addresses."""
    return f"2001:db8:5::{ip4.rsplit('.', 1)[1]}"


@dataclass(frozen=True)
class Phone:
    index: int
    ns: str
    mac: str
    ip: str
    ip6: str
    #: DHCP option 114 as the phone received it (the RFC 8908 API URI)
    captive_api: str | None = None
    dns: str | None = None


@dataclass
class _State:
    prefix: str
    tmp: str = ""
    namespaces: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    etc_dirs: list[str] = field(default_factory=list)


class Bench:
    """See the module docstring; ``with Bench("klr", phones=2) as bench: ...``."""

    def __init__(
        self,
        prefix: str,
        phones: int = 1,
        portal_port: int = 8080,
        cfg: RouterConfig | None = None,
        *,
        portal_https_port: int = 8443,
        portal_captive_port: int | None = None,
        dhcp: bool = True,
    ) -> None:
        if not (1 <= len(prefix) <= 4 and prefix.isascii() and prefix.isalnum() and prefix.islower()):
            raise BenchError(f"prefix: 1-4 lower-case letters or digits, got {prefix!r}")
        if not 0 <= phones <= 200:
            raise BenchError(f"phones: 0-200, got {phones}")
        self.prefix = prefix
        self.cfg = cfg or RouterConfig(walled_garden_domains=["garden.test"])
        self.policy = m.Policy(
            router=self.cfg,
            portal_port=portal_port,
            portal_https_port=portal_https_port,
            portal_captive_port=portal_captive_port,
            api_url=f"https://{self.cfg.portal_name}:{portal_https_port}/api/captive",
        )
        self.router = f"{prefix}-rtr"
        self.inet = f"{prefix}-inet"
        self.phone_count = phones
        self.dhcp = dhcp
        self.phones: list[Phone] = []
        self.ca_file: Path | None = None
        self._state = _State(prefix)
        self._gate: NftGate | None = None
        self._procs: list[subprocess.Popen[Any]] = []

    # -- the contract

    @property
    def portal_address(self) -> tuple[str, int]:
        return self.cfg.portal_ip, self.policy.portal_port

    def phone(self, i: int) -> Phone:
        return self.phones[i]

    def gate(self) -> NftGate:
        if self._gate is None:
            self._gate = NftGate(self.policy, netns=self.router)
        return self._gate

    def run(self, ns: str, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        check = bool(kw.pop("check", False))
        return subprocess.run(["ip", "netns", "exec", ns, *argv], check=check, **kw)

    def popen(self, ns: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start a process in ``ns``; the bench terminates it on exit."""
        kw.setdefault("start_new_session", True)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)
        self._procs.append(proc)
        self._state.pids.append(proc.pid)
        self._save()
        return proc

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- building

    def start(self) -> None:
        if self._state_file().exists():
            Bench.down(self.prefix)
        names = [self.router, self.inet] + [f"{self.prefix}-ph{i}" for i in range(self.phone_count)]
        existing = set(_netns_list())
        clash = [n for n in names if n in existing]
        if clash:
            raise BenchError(f"namespaces exist without a bench state file: {', '.join(clash)}")
        self._state.tmp = tempfile.mkdtemp(prefix=f"keliu-bench-{self.prefix}-")
        self._save()
        try:
            for name in names:
                _ip("netns", "add", name)
                self._state.namespaces.append(name)
                self._save()
                _ip("-n", name, "link", "set", "lo", "up")
            self._build_inet()
            self._build_router()
            self._start_services()
            self._build_phones()
        except BaseException:
            self.stop()
            raise

    def _build_inet(self) -> None:
        r, i = self.router, self.inet
        wan = self.cfg.wan_iface
        # no duplicate address detection anywhere, set before the first link exists in either namespace: a
        # tentative link-local address holds back neighbour discovery, so IPv6 would only work seconds later
        for ns in (r, i):
            _sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        _ip("-n", r, "link", "add", wan, "type", "veth", "peer", "name", "eth0", "netns", i)
        _ip("-n", i, "addr", "add", f"{WAN_INET}/24", "dev", "eth0")
        _ip("-n", i, "addr", "add", f"{WAN6_INET}/64", "dev", "eth0", "nodad")
        _ip("-n", i, "link", "set", "eth0", "up")
        # the servers' addresses sit on lo (this kernel has no dummy interfaces)
        for addr in sorted(set(NAMES.values())):
            _ip("-n", i, "addr", "add", f"{addr}/32", "dev", "lo")
            _ip("-n", i, "addr", "add", f"{ip6_of(addr)}/128", "dev", "lo", "nodad")
        _ip("-n", i, "route", "add", self.cfg.lan_cidr, "via", WAN_ROUTER)
        _ip("-n", i, "-6", "route", "add", "2001:db8:77::/64", "via", WAN6_ROUTER)

    def _build_router(self) -> None:
        r, c = self.router, self.cfg
        lan = netaddr.IPNetwork(c.lan_cidr)
        _sysctl(r, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        _ip("-n", r, "addr", "add", f"{WAN_ROUTER}/24", "dev", c.wan_iface)
        _ip("-n", r, "addr", "add", f"{WAN6_ROUTER}/64", "dev", c.wan_iface, "nodad")
        _ip("-n", r, "link", "set", c.wan_iface, "up")
        _ip("-n", r, "link", "add", c.lan_iface, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _ip("-n", r, "addr", "add", f"{c.portal_ip}/{lan.prefixlen}", "dev", c.lan_iface)
        _ip("-n", r, "addr", "add", f"{LAN6_ROUTER}/64", "dev", c.lan_iface, "nodad")
        _ip("-n", r, "link", "set", c.lan_iface, "up")
        _ip("-n", r, "route", "add", "default", "via", WAN_INET)
        _ip("-n", r, "-6", "route", "add", "default", "via", WAN6_INET)
        nft.apply(self.policy, r)

    def _start_services(self) -> None:
        tmp = Path(self._state.tmp)
        # the internet: DNS for NAMES, HTTP 80 and HTTPS 443 with a certificate of a throw-away CA
        dns_args = [f"--address=/{name}/{ip}" for name, ip in NAMES.items()]
        dns_args += [f"--address=/{name}/{ip6_of(ip)}" for name, ip in NAMES.items()]
        self.popen(self.inet, ["dnsmasq", "-k", "--no-resolv", "--no-hosts", "--bind-interfaces",
                               f"--listen-address={WAN_INET}", "--port=53", "--user=root", "--pid-file",
                               "--log-facility=-", "--quiet-dhcp", *dns_args],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ca_file = self._certificates(tmp)
        with (tmp / "inet.log").open("w") as log:
            self.popen(self.inet, [sys.executable, "-m", "keliu.testing.internet",
                                   "--cert", str(tmp / "inet.pem"), "--key", str(tmp / "inet.key")],
                       stdout=subprocess.DEVNULL, stderr=log, cwd=_source_root())
        # the router: the rendered dnsmasq plus what a bench needs (upstream, files in tmp, no ping before offers)
        conf = tmp / "dnsmasq.conf"
        conf.write_text(render.dnsmasq(self.policy) + "\n".join([
            "# bench",
            "no-resolv",
            f"server={WAN_INET}",
            "no-hosts",
            "no-ping",
            "user=root",
            f"dhcp-leasefile={tmp / 'leases'}",
            "log-facility=-",
        ]) + "\n", encoding="utf-8")
        with (tmp / "dnsmasq.log").open("w") as log:
            self.popen(self.router, ["dnsmasq", "-k", f"--conf-file={conf}", "--pid-file"],
                       stdout=subprocess.DEVNULL, stderr=log)
        for ns, server in ((self.router, WAN_INET), (self.inet, WAN_INET)):
            self._resolv(ns, server)
        # both of the internet's listeners (443 loads its certificate after 80 is up; each is dual-stack, so the
        # IPv4 answer means IPv6 is served too)
        wait_port(self.inet, WAN_INET, 80)
        wait_port(self.inet, WAN_INET, 443)
        wait_port(self.router, self.cfg.portal_ip, 53)

    def _certificates(self, tmp: Path) -> Path:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert(*NAMES, *NAMES.values(), self.cfg.portal_name, self.cfg.portal_ip)
        cert.private_key_pem.write_to_path(str(tmp / "inet.key"))
        cert.cert_chain_pems[0].write_to_path(str(tmp / "inet.pem"))
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(str(tmp / "inet.pem"), append=True)
        ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
        # the portal's own certificate for the RFC 8908 API, signed by the same CA
        portal = ca.issue_cert(self.cfg.portal_name, self.cfg.portal_ip)
        portal.private_key_pem.write_to_path(str(tmp / "portal.key"))
        portal.cert_chain_pems[0].write_to_path(str(tmp / "portal.pem"))
        return tmp / "ca.pem"

    @property
    def portal_cert(self) -> tuple[Path, Path]:
        """(certificate, key) PEM files for the portal's HTTPS listener, signed by :attr:`ca_file`'s CA."""
        tmp = Path(self._state.tmp)
        return tmp / "portal.pem", tmp / "portal.key"

    @property
    def tmp(self) -> Path:
        return Path(self._state.tmp)

    def _resolv(self, ns: str, server: str) -> None:
        d = Path("/etc/netns") / ns
        d.mkdir(parents=True, exist_ok=True)
        self._state.etc_dirs.append(str(d))
        self._save()
        (d / "resolv.conf").write_text(f"nameserver {server}\n", encoding="utf-8")

    def _build_phones(self) -> None:
        r = self.router
        tmp = Path(self._state.tmp)
        script = tmp / "udhcpc.sh"
        script.write_text(_UDHCPC_SCRIPT, encoding="utf-8")
        script.chmod(0o755)
        macs = []
        for i in range(self.phone_count):
            ns = f"{self.prefix}-ph{i}"
            mac = self.phone_mac(i)
            macs.append(mac)
            port = f"{self.prefix}l{i}"
            _ip("-n", ns, "link", "add", "eth0", "address", mac, "type", "veth", "peer", "name", port, "netns", r)
            _ip("-n", r, "link", "set", port, "master", self.cfg.lan_iface, "up")
            _sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.eth0.accept_dad=0",
                    "net.ipv6.conf.eth0.accept_ra=0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "addr", "add", f"{self.phone_ip6(i)}/64", "dev", "eth0", "nodad")
            _ip("-n", ns, "-6", "route", "add", "default", "via", LAN6_ROUTER)
        leases: list[tuple[int, subprocess.Popen[Any]]] = []
        if self.dhcp:
            for i in range(self.phone_count):
                ns = f"{self.prefix}-ph{i}"
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", ns, "env", f"KLR_LEASE={tmp / f'lease{i}'}",
                     "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1",
                     "-O", "114", "-s", str(script)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                leases.append((i, proc))
        for i, proc in leases:
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                raise BenchError(f"phone {i}: no DHCP lease within 30 s") from exc
            if rc != 0:
                raise BenchError(f"phone {i}: udhcpc exited with {rc} (no lease)")
        for i in range(self.phone_count):
            ns = f"{self.prefix}-ph{i}"
            lease = _read_lease(tmp / f"lease{i}") if self.dhcp else {}
            phone = Phone(i, ns, macs[i], lease.get("ip", ""), self.phone_ip6(i),
                          _option_text(lease.get("opt114")), lease.get("dns"))
            self.phones.append(phone)
            self._resolv(ns, phone.dns or self.cfg.portal_ip)

    def phone_mac(self, i: int) -> str:
        tag = sum(ord(c) << (8 * k) for k, c in enumerate(self.prefix)) & 0xFFFF
        return f"02:6b:{tag >> 8:02x}:{tag & 0xFF:02x}:{i >> 8:02x}:{i & 0xFF:02x}"

    def phone_ip6(self, i: int) -> str:
        return f"2001:db8:77::{0x100 + i:x}"

    def set_phone(self, i: int, **changes: Any) -> Phone:
        """Record a change made by a test (e.g. a spoofed address) so that ``phone(i)`` tells the truth."""
        self.phones[i] = replace(self.phones[i], **changes)
        return self.phones[i]

    # -- tearing down

    def stop(self) -> None:
        if self._gate is not None:
            self._gate.close()
            self._gate = None
        for proc in self._procs:
            _terminate(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
        self._procs = []
        Bench._teardown(self._state)
        self._state = _State(self.prefix)
        self.phones = []

    def _state_file(self) -> Path:
        return STATE_DIR / f"{self.prefix}.json"

    def _save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self._state_file().write_text(json.dumps(self._state.__dict__), encoding="utf-8")

    def detach(self) -> None:
        """Leave everything running (for ``keliu bench up``); ``Bench.down(prefix)`` removes it."""
        self._procs = []
        self._save()

    @staticmethod
    def down(prefix: str) -> bool:
        """Remove what the bench ``prefix`` left behind (from its state file). False if there was none."""
        path = STATE_DIR / f"{prefix}.json"
        if not path.exists():
            return False
        try:
            state = _State(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise BenchError(f"unreadable bench state {path}: {exc}") from exc
        for pid in state.pids:
            _terminate(pid)
        Bench._teardown(state)
        return True

    @staticmethod
    def _teardown(state: _State) -> None:
        for ns in state.namespaces:
            # processes we did not start ourselves (e.g. a portal started with plain subprocess) keep a
            # namespace alive after `ip netns del`; kill what still runs inside ours first
            for pid in _pids_in(ns):
                _terminate(pid)
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        for d in state.etc_dirs:
            shutil.rmtree(d, ignore_errors=True)
        if state.tmp:
            shutil.rmtree(state.tmp, ignore_errors=True)
        (STATE_DIR / f"{state.prefix}.json").unlink(missing_ok=True)


_UDHCPC_SCRIPT = """#!/bin/sh
# busybox udhcpc hook of the keliu bench: configure eth0 and write the lease for the bench to read
case "$1" in
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    { echo "ip=$ip"; echo "router=$router"; echo "dns=$(echo $dns | cut -d' ' -f1)"; echo "opt114=$opt114"; } \\
      > "$KLR_LEASE"
    ;;
esac
exit 0
"""


def _read_lease(path: Path) -> dict[str, str]:
    if not path.exists():
        raise BenchError(f"DHCP hook wrote no lease file {path}")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if value:
            out[key] = value
    return out


def _option_text(value: str | None) -> str | None:
    """busybox exports unknown options as hex; option 114 is a URI."""
    if not value:
        return None
    try:
        return bytes.fromhex(value).decode("utf-8")
    except ValueError:
        return value


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def _sysctl(ns: str, *settings: str) -> None:
    proc = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"sysctl in {ns}: {proc.stderr.strip()}")


def _netns_list() -> list[str]:
    proc = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True)
    return [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]


def _pids_in(ns: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", ns], check=False, capture_output=True, text=True)
    return [int(p) for p in proc.stdout.split() if p.isdigit() and int(p) != os.getpid()]


def _terminate(pid: int) -> None:
    """SIGTERM, then SIGKILL after a second; a pid that is gone is fine."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its existence instead
            done = 0
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        if done:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def wait_port(ns: str, host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts TCP on host:port inside ``ns`` (e.g. the portal the caller started)."""
    deadline = time.monotonic() + timeout

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False

    while time.monotonic() < deadline:
        if in_netns(ns, probe):
            return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on {host}:{port} in {ns} after {timeout} s")


def _source_root() -> str:
    return str(Path(__file__).resolve().parent.parent)
