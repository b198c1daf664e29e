"""Live capture from a monitor-mode interface (an edge: raw sockets, ``iw``).

scapy's L2 listen socket with the kernel BPF filter :data:`BPF` receives only probe requests and association and
reassociation requests (management subtypes 4, 0 and 2: a phone scanning, and a phone joining a network, from the
address it keeps for that network); their raw bytes (radiotap included) are collected for half a second at a time into an in-memory pcap and handed to
the same parser and pipeline as a replay, so both paths share everything past the socket. A hopper thread moves
the radio over the configured channels (2.4 and 5 GHz), ``dwell_ms`` on each, with ``iw dev IFACE set channel``.
The monitor interface itself is created by the router's nl80211 path (``router_config``).

On a machine without a wireless card (like the development machines) :func:`check_interface` raises
:class:`CaptureUnavailable` with the reason, and the CLI prints it; the pipeline is exercised through replay.
"""
from __future__ import annotations

import logging
import select
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sensor.errors import CaptureUnavailable
from sensor.pipeline import Pipeline

log = logging.getLogger(__name__)

BPF = "type mgt and (subtype probe-req or subtype assoc-req or subtype reassoc-req)"
ARPHRD_IEEE80211_RADIOTAP = 803
CAP_NET_RAW = 13  # linux/capability.h
FREQ = {**{c: 2407 + 5 * c for c in range(1, 14)}, 14: 2484, **{c: 5000 + 5 * c for c in range(32, 178)}}


def check_interface(iface: str, sys_class_net: Path = Path("/sys/class/net")) -> None:
    """Raise CaptureUnavailable unless ``iface`` is a wireless interface in monitor mode we may open."""
    if not (sys_class_net / iface).exists():
        wireless = sorted(p.name for p in sys_class_net.glob("*") if (p / "phy80211").exists())
        hint = f"wireless interfaces here: {', '.join(wireless)}" if wireless else "this machine has no wireless card"
        raise CaptureUnavailable(f"no interface {iface!r} ({hint})")
    if not (sys_class_net / iface / "phy80211").exists():
        raise CaptureUnavailable(f"{iface} is not a wireless interface")
    kind = (sys_class_net / iface / "type").read_text().strip()
    if kind != str(ARPHRD_IEEE80211_RADIOTAP):
        raise CaptureUnavailable(f"{iface} is not in monitor mode with radiotap (link type {kind}); create a monitor "
                                 "interface first (keliu router)")
    if not has_net_raw(Path("/proc/self/status").read_text()):
        raise CaptureUnavailable("live capture needs root (or CAP_NET_RAW)")


def has_net_raw(status: str) -> bool:
    """Whether a ``/proc/<pid>/status`` text has CAP_NET_RAW in the effective set.

    Root has it; so has keliu-sensor.service, which runs as the user keliu with ``AmbientCapabilities=CAP_NET_RAW``:
    a uid check would refuse the very unit that deploys the sensor.
    """
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_RAW & 1)
    return False


class ChannelHopper(threading.Thread):
    """Switches ``iface`` over ``channels`` every ``dwell_ms``; ``current`` is the channel listened on."""

    def __init__(self, iface: str, channels: list[int], dwell_ms: int) -> None:
        super().__init__(name="channel-hopper", daemon=True)
        self.iface, self.channels, self.dwell = iface, channels, dwell_ms / 1000
        self.current: int | None = channels[0] if channels else None
        self.stopping = threading.Event()
        self.iw = shutil.which("iw") or "/usr/sbin/iw"

    def set_channel(self, channel: int) -> None:
        res = subprocess.run([self.iw, "dev", self.iface, "set", "channel", str(channel)], capture_output=True,
                             text=True, check=False)
        if res.returncode != 0:
            log.warning("channel %d on %s: %s", channel, self.iface, res.stderr.strip()[:200])
        else:
            self.current = channel

    def run(self) -> None:
        if len(self.channels) < 2:
            if self.channels:
                self.set_channel(self.channels[0])
            return
        i = 0
        while not self.stopping.is_set():
            self.set_channel(self.channels[i % len(self.channels)])
            i += 1
            self.stopping.wait(self.dwell)


def _pcap(records: list[tuple[float, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)]
    for ts, data in records:
        sec = int(ts)
        out.append(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(data), len(data)))
        out.append(data)
    return b"".join(out)


def open_socket(iface: str) -> Any:
    """scapy's L2 listen socket on ``iface`` with the kernel filter :data:`BPF`."""
    import scapy.arch  # noqa: F401 -- sets conf.L2listen (PF_PACKET); scapy.config alone leaves it None
    from scapy.config import conf

    try:
        return conf.L2listen(iface=iface, filter=BPF)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CaptureUnavailable(f"cannot open {iface}: {exc}") from exc


def capture(iface: str, channels: list[int], dwell_ms: int, pipe: Pipeline,
            stop: Callable[[], bool] = lambda: False, flush_s: float = 0.5) -> None:
    """Capture until ``stop()``; every ``flush_s`` the frames received go through the pipeline."""
    check_interface(iface)
    sock = open_socket(iface)
    hopper = ChannelHopper(iface, channels, dwell_ms)
    hopper.start()
    pending: list[tuple[float, bytes]] = []
    mark = time.monotonic()
    try:
        while not stop():
            # wait at most flush_s, so that stop() and the timed flush are honoured on a quiet channel
            ready, _w, _x = select.select([sock], [], [], flush_s)
            if ready:
                _cls, data, ts = sock.recv_raw(65535)
                if data:
                    pending.append((float(ts or time.time()), bytes(data)))
            if time.monotonic() - mark >= flush_s:
                pipe.channel = hopper.current
                if pending:
                    for batch in pipe.parser.batches(_pcap(pending)):
                        pipe.feed(batch)
                    pending = []
                else:
                    pipe.tick()
                mark = time.monotonic()
    finally:
        hopper.stopping.set()
        sock.close()
        pipe.close()
