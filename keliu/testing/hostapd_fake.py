"""A FAKE hostapd control socket for tests and the demo (an edge: a thread on a Unix datagram socket). It is not
hostapd.

It answers the commands keliu's client (sensor/hostapd.py) sends, the way hostapd's ctrl_iface does: one datagram
in, one reply datagram out to the sender's address, after an unsolicited event the client must skip. ``PHONE`` and
``LAPTOP`` are station entries as hostapd prints them. ``python -m keliu.testing.hostapd_fake --ctrl PATH
--schedule FILE`` serves, at PATH, the stations a schedule says are associated at the wall-clock time of day
(``keliu demo``'s guest Wi-Fi: :func:`keliu.demo.ap_schedule`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

# one station as hostapd's STA-FIRST / STA-NEXT answer it (ctrl_iface_ap.c: address line, flags, aid, capability,
# listen_interval, supported_rates, timeout_next, the WPA MIB, the driver's tx/rx data, connected_time, ...)
PHONE = """\
5a:1c:7e:20:9b:41
flags=[AUTH][ASSOC][AUTHORIZED][SHORT_PREAMBLE][WMM][HT]
aid=1
capability=0x1431
listen_interval=20
supported_rates=82 84 8b 96 0c 12 18 24 30 48 60 6c
timeout_next=NULLFUNC POLL
rx_packets=1873
tx_packets=2211
rx_bytes=213498
tx_bytes=1988320
inactive_msec=840
signal=-52
rx_rate_info=650 mcs 7 shortGI
tx_rate_info=722 mcs 7 shortGI
ht_mcs_bitmask=ffff0000000000000000
connected_time=312
supp_op_classes=51515354737475767778797a7b7c7d7e7f8081
ht_caps_info=0x01ef
ext_capab=0000080000000040
"""
LAPTOP = """\
00:1e:c2:aa:bb:03
flags=[AUTH][ASSOC][AUTHORIZED][WMM]
aid=2
capability=0x0421
listen_interval=10
supported_rates=82 84 8b 96 0c 12 18 24 30 48 60 6c
timeout_next=NULLFUNC POLL
rx_packets=10
tx_packets=12
rx_bytes=1000
tx_bytes=1200
inactive_msec=95000
signal=-71
rx_rate_info=240
tx_rate_info=540
connected_time=4021
"""


def station_entry(mac: str, signal_dbm: int, connected_s: int, inactive_ms: int = 500) -> str:
    """One associated station as hostapd's STA-FIRST / STA-NEXT answers it (the fields keliu reads, and a few)."""
    return (f"{mac}\nflags=[AUTH][ASSOC][AUTHORIZED][WMM][HT]\naid=1\ncapability=0x1431\nlisten_interval=20\n"
            f"timeout_next=NULLFUNC POLL\ninactive_msec={inactive_ms}\nsignal={signal_dbm}\n"
            f"connected_time={connected_s}\n")


@contextlib.contextmanager
def fake_hostapd(stations: list[str] | Callable[[], list[str]], freq: int = 2437, silent: bool = False,
                 where: str | None = None, path: str | None = None) -> Iterator[tuple[str, list[str]]]:
    """A stand-in for hostapd's control socket: one datagram in, one reply datagram out to the sender's address
    (STA-FIRST, STA-NEXT <addr>, STATUS, PING); the commands it got are recorded. ``stations``: the entries, or a
    function giving them (asked at each STA-FIRST: the list then walked). ``where``: the folder its socket's folder
    is made in (default: the temporary folder); ``path``: the socket's path instead (its folder must exist)."""
    d = None if path is not None else tempfile.mkdtemp(prefix="keliu-fakehapd-", dir=where)
    if path is None:
        path = os.path.join(d or "", "wlan0")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(0.2)
    got: list[str] = []
    done = threading.Event()
    listing = stations if callable(stations) else lambda: stations
    walked = listing()  # the list as of the last STA-FIRST: STA-NEXT walks it

    def serve() -> None:
        while not done.is_set():
            try:
                data, addr = srv.recvfrom(4096)
            except TimeoutError:
                continue
            cmd = data.decode()
            got.append(cmd)
            if silent:
                continue
            if cmd == "STA-FIRST":
                walked[:] = listing()
                reply = walked[0] if walked else ""
            elif cmd.startswith("STA-NEXT "):
                mac = cmd.split()[1].lower()
                macs = [s.splitlines()[0].lower() for s in walked]
                if mac not in macs:
                    reply = "FAIL\n"
                else:
                    i = macs.index(mac) + 1
                    reply = walked[i] if i < len(walked) else ""
            elif cmd == "STATUS":
                reply = f"state=ENABLED\nphy=phy0\nfreq={freq}\nnum_sta_non_erp=0\n"
            elif cmd == "PING":
                reply = "PONG\n"
            else:
                reply = "UNKNOWN COMMAND\n"
            try:
                srv.sendto(b"<3>CTRL-EVENT-SCAN-STARTED ", addr)  # an event first: the client must skip it
                srv.sendto(reply.encode(), addr)
            except OSError as exc:  # hostapd logs an unreachable client and goes on
                got.append(f"unreachable: {exc.strerror}")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield path, got
    finally:
        done.set()
        t.join()
        srv.close()
        os.unlink(path)
        if d is not None:
            os.rmdir(d)


def scheduled(schedule: dict[str, object], now: Callable[[], float] = time.time,
              linger_s: float = 60.0) -> Callable[[], list[str]]:
    """The station entries a schedule (``{"tz": zone, "stations": [{"mac", "start", "end", "signal"}]}``, times in
    seconds after the local midnight) lists at the time of day of ``now()``: from the association to ``linger_s``
    after the phone left (hostapd keeps a silent station until its inactivity timer drops it)."""
    tz = ZoneInfo(str(schedule["tz"]))
    entries = list(schedule["stations"])  # type: ignore[call-overload]

    def listing() -> list[str]:
        local = datetime.fromtimestamp(now(), tz)
        t = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return [station_entry(e["mac"], int(e["signal"]), int(t - e["start"]),
                              int(max(0.0, t - e["end"]) * 1000) + 500)
                for e in entries if e["start"] <= t <= e["end"] + linger_s]

    return listing


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="A FAKE hostapd control socket (keliu demo): not hostapd.")
    ap.add_argument("--ctrl", required=True, help="the socket's path (its folder must exist)")
    ap.add_argument("--schedule", required=True, help="JSON: the stations and when they are associated")
    args = ap.parse_args(argv)
    with open(args.schedule, encoding="utf-8") as f:
        schedule = json.load(f)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.ctrl)  # a socket left by a run that was killed
    with fake_hostapd(scheduled(schedule), path=args.ctrl):
        while not stop.wait(1.0):
            pass


if __name__ == "__main__":
    main()
