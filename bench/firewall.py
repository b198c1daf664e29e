"""Authorize/revoke latency and forwarding throughput: keliu's set elements against one rule per client.

Run as root: ``.venv/bin/python bench/firewall.py`` (``--quick`` for a smoke run). It builds a netns bench
(prefix ``klrf``), then for 10, 1,000 and 10,000 authorized clients measures, from Python:

- keliu: ``NftGate.execute(AllowClient)`` and ``NftGate.execute(RevokeClient)`` (one libnftables transaction on a
  kept context; revoke also flushes the client's conntrack entries), the way the portal calls the Gate;
- one bare element added and deleted through libnftables, and the same through the other in-process way, pyroute2's
  netlink ``set_elems`` (the Gate's transaction does more than one element);
- for reference, the same set element added and deleted by spawning the ``nft`` CLI;
- the baseline of openNDS/wifidog: one rule per client added with the ``nft`` CLI, and deleted by handle, which
  must first be found by listing the chain (``nft -a list chain``);

and the TCP throughput (iperf3, phone → internet through the router namespace) with 10,000 authorized clients,
keliu's set lookup against a chain of 10,000 per-client rules that every packet walks (the phone's rule last: the
newest client), once with the veths' segmentation offload (64 KB super-packets, one rule walk each) and once with
MTU-sized packets as a router gets them from Wi-Fi. The last line of output is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keliu.gate import AllowClient, RevokeClient
from keliu.testing.netbench import NAMES, Bench
from router_config.nft import Nft

SIZES = (10, 1000, 10000)
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def synthetic(i: int) -> tuple[str, str]:
    """The i-th made-up client (MAC, IPv4), outside the bench's LAN so it never collides with a phone."""
    return f"02:aa:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01", f"10.100.{i >> 8 & 255}.{i & 255}"


def fresh(k: int) -> tuple[str, str]:
    return f"02:bb:00:{k >> 8 & 255:02x}:{k & 255:02x}:02", f"10.101.{k >> 8 & 255}.{k & 255}"


class NftCli:
    """The nft command line, spawned straight into the router namespace (one exec per call, like openNDS)."""

    def __init__(self, netns: str) -> None:
        self.path = f"/run/netns/{netns}"

    def _enter(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        if _libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True,
                              preexec_fn=self._enter, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"nft {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def timed(fn: Callable[..., object], *args: object, **kw: object) -> float:
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def fill_baseline(cli: NftCli, n: int, hooked: bool, phone: tuple[str, str] | None = None) -> None:
    """Table inet klbase: chain ``clients`` with one ``ether saddr . ip saddr`` rule per client."""
    lines = ["table inet klbase {}", "delete table inet klbase", "table inet klbase {", "\tchain clients {", "\t}"]
    if hooked:
        lines += ["\tchain forward {", "\t\ttype filter hook forward priority filter; policy accept;",
                  '\t\tiifname "br-lan" jump clients', '\t\toifname "br-lan" ct state established,related accept',
                  '\t\toifname "br-lan" drop', "\t}"]
    lines.append("}")
    clients = [synthetic(i) for i in range(n)] + ([phone] if phone else [])
    lines += [f"add rule inet klbase clients ether saddr {mac} ip saddr {ip} counter accept" for mac, ip in clients]
    if hooked:
        lines.append("add rule inet klbase clients drop")
    cli("-f", "-", stdin="\n".join(lines) + "\n")


def delete_by_handle(cli: NftCli, mac: str) -> None:
    """openNDS/wifidog's revoke: find the client's rule handle by listing the chain, then delete it."""
    listing = cli("-a", "list", "chain", "inet", "klbase", "clients")
    handle = next(line.rsplit("# handle ", 1)[1] for line in listing.splitlines() if mac in line)
    cli("delete", "rule", "inet", "klbase", "clients", "handle", handle.strip())


def latency(bench: Bench, n: int, reps: int, baseline_reps: int) -> dict[str, float]:
    gate = bench.gate()
    now = time.time()
    gate.reconcile([AllowClient(*synthetic(i), until=now + 3600) for i in range(n)])
    allow_s, revoke_s = [], []
    for k in range(reps):
        mac, ip = fresh(k)
        allow_s.append(timed(gate.execute, AllowClient(mac, ip, time.time() + 600)))
        revoke_s.append(timed(gate.execute, RevokeClient(mac)))
    bare_add, bare_del = [], []
    with Nft(bench.router) as ctx:  # one bare element through libnftables, to compare with pyroute2's
        for k in range(reps):
            mac, ip = fresh(30000 + k)
            bare_add.append(timed(ctx.run, f"add element inet keliu allowed {{ {mac} . {ip} timeout 600s }}"))
            bare_del.append(timed(ctx.run, f"delete element inet keliu allowed {{ {mac} . {ip} }}"))
    pyroute2 = pyroute2_latency(bench, reps)
    cli = NftCli(bench.router)
    cli_add, cli_del = [], []
    for k in range(baseline_reps):
        mac, ip = fresh(10000 + k)
        cli_add.append(timed(cli, "add", "element", "inet", "keliu", "allowed", f"{{ {mac} . {ip} timeout 600s }}"))
        cli_del.append(timed(cli, "delete", "element", "inet", "keliu", "allowed", f"{{ {mac} . {ip} }}"))
    fill_baseline(cli, n, hooked=False)
    rule_add, rule_del = [], []
    for k in range(baseline_reps):
        mac, ip = fresh(20000 + k)
        rule_add.append(timed(cli, "add", "rule", "inet", "klbase", "clients", "ether", "saddr", mac,
                              "ip", "saddr", ip, "counter", "accept"))
        rule_del.append(timed(delete_by_handle, cli, mac))
    cli("delete", "table", "inet", "klbase")
    return {
        "authorize_ms": median_ms(allow_s), "revoke_ms": median_ms(revoke_s),
        "authorize_p95_ms": round(sorted(allow_s)[int(len(allow_s) * 0.95) - 1] * 1000, 3),
        "revoke_p95_ms": round(sorted(revoke_s)[int(len(revoke_s) * 0.95) - 1] * 1000, 3),
        "libnftables_element_add_ms": median_ms(bare_add), "libnftables_element_delete_ms": median_ms(bare_del),
        **pyroute2,
        "cli_element_add_ms": median_ms(cli_add), "cli_element_delete_ms": median_ms(cli_del),
        "baseline_authorize_ms": median_ms(rule_add), "baseline_revoke_ms": median_ms(rule_del),
    }


def pyroute2_probe(reps: int) -> None:
    """Run inside the router namespace: pyroute2's netlink set_elems add/delete of one (MAC . IPv4) element."""
    from pyroute2.nftables.main import NFTables, NFTSet, NFTSetElem

    nft = NFTables(nfgen_family=1)  # NFPROTO_INET
    target = NFTSet(table="keliu", name="allowed")
    add, delete = [], []
    try:
        for k in range(reps):
            # the concatenated key as the kernel stores it: MAC padded to 8 bytes, then the IPv4 address
            key = bytes([2, 0xCC, 0, 0, k >> 8 & 255, k & 255, 0, 0, 10, 102, k >> 8 & 255, k & 255])
            add.append(timed(nft.set_elems, "add", set=target, elements=[NFTSetElem(value=key, timeout=600_000)]))
            delete.append(timed(nft.set_elems, "del", set=target, elements=[NFTSetElem(value=key)]))
    finally:
        nft.close()
    print(json.dumps({"add_ms": median_ms(add), "delete_ms": median_ms(delete)}))


def pyroute2_latency(bench: Bench, reps: int) -> dict[str, float]:
    out = bench.run(bench.router, [sys.executable, __file__, "--pyroute2-probe", str(reps)], timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"pyroute2 probe: {out.stderr[-500:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {"pyroute2_element_add_ms": float(data["add_ms"]), "pyroute2_element_delete_ms": float(data["delete_ms"])}


def iperf(bench: Bench, seconds: int) -> float:
    server = bench.popen(bench.inet, ["iperf3", "-s", "-1", "-B", NAMES["www.example.com"]],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(20):  # the server may still be starting on a busy machine (a probe would use up its -1)
        time.sleep(0.3)
        out = bench.run(bench.phone(0).ns, ["iperf3", "-c", NAMES["www.example.com"], "-t", str(seconds), "-J"],
                        timeout=seconds + 30)
        if "Connection refused" not in out.stdout + out.stderr:
            break
    server.wait(timeout=10)
    if out.returncode != 0:
        raise RuntimeError(f"iperf3: {out.stdout[-300:]} {out.stderr[-300:]}")
    return round(float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e6, 1)


def gso(bench: Bench, size: int) -> None:
    """Cap the phone's segmentation offload: 1500 makes every packet MTU-sized, as frames arriving from Wi-Fi are."""
    bench.run(bench.phone(0).ns, ["ip", "link", "set", "dev", "eth0", "gso_max_size", str(size)], check=True)


def throughput(bench: Bench, n: int, seconds: int) -> dict[str, float]:
    gate = bench.gate()
    ph = bench.phone(0)
    now = time.time()
    gate.reconcile([AllowClient(*synthetic(i), until=now + 3600) for i in range(n)]
                   + [AllowClient(ph.mac, ph.ip, now + 3600)])
    out = {"forward_mbps": iperf(bench, seconds)}
    gso(bench, 1500)
    out["forward_mbps_1500"] = iperf(bench, seconds)
    gso(bench, 65536)
    cli = NftCli(bench.router)
    # baseline: our table gone, every packet of the phone walks n per-client rules before its own
    with Nft(bench.router) as nft:
        nft.run("delete table inet keliu")
    fill_baseline(cli, n, hooked=True, phone=(ph.mac, ph.ip))
    out["baseline_forward_mbps"] = iperf(bench, seconds)
    gso(bench, 1500)
    out["baseline_forward_mbps_1500"] = iperf(bench, seconds)
    cli("delete", "table", "inet", "klbase")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 1 s iperf (a smoke run)")
    parser.add_argument("--pyroute2-probe", type=int, metavar="REPS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pyroute2_probe:
        pyroute2_probe(args.pyroute2_probe)
        return
    if os.geteuid() != 0:
        sys.exit("bench/firewall.py needs root (network namespaces, nftables)")
    reps, base_reps, seconds = (20, 3, 1) if args.quick else (200, 15, 4)
    result: dict[str, float] = {}
    with Bench("klrf", phones=1) as bench:
        for n in SIZES:
            r = latency(bench, n, reps, base_reps)
            tag = {10: "10", 1000: "1k", 10000: "10k"}[n]
            print(f"{n:>6} clients: keliu authorize {r['authorize_ms']:.3f} ms (p95 {r['authorize_p95_ms']:.3f}), "
                  f"revoke {r['revoke_ms']:.3f} ms (p95 {r['revoke_p95_ms']:.3f}) | libnftables element add "
                  f"{r['libnftables_element_add_ms']:.3f} ms, delete {r['libnftables_element_delete_ms']:.3f} ms"
                  f" | pyroute2 element add "
                  f"{r['pyroute2_element_add_ms']:.3f} ms, delete {r['pyroute2_element_delete_ms']:.3f} ms | nft CLI element add "
                  f"{r['cli_element_add_ms']:.1f} ms, delete {r['cli_element_delete_ms']:.1f} ms | baseline rule "
                  f"add {r['baseline_authorize_ms']:.1f} ms, delete by handle {r['baseline_revoke_ms']:.1f} ms",
                  flush=True)
            for key, value in r.items():
                result[key.replace("_ms", f"_ms_{tag}")] = value
        result["revoke_speedup_10k"] = round(result["baseline_revoke_ms_10k"] / result["revoke_ms_10k"], 1)
        t = throughput(bench, 10000, seconds)
        print(f"forwarding with 10000 clients: keliu {t['forward_mbps']} Mbit/s, "
              f"per-client rules {t['baseline_forward_mbps']} Mbit/s; MTU-sized packets (no GSO): keliu "
              f"{t['forward_mbps_1500']} Mbit/s, per-client rules {t['baseline_forward_mbps_1500']} Mbit/s",
              flush=True)
        for key, value in t.items():
            result[key.replace("_mbps", "_mbps_10k")] = value
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
