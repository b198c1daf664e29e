"""A FAKE hostapd control socket for tests (an edge: a thread on a Unix datagram socket). It is not hostapd.

It answers the commands keliu's client (sensor/hostapd.py) sends, the way hostapd's ctrl_iface does: one datagram
in, one reply datagram out to the sender's address, after an unsolicited event the client must skip. ``PHONE`` and
``LAPTOP`` are station entries as hostapd prints them.
"""
from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator

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


@contextlib.contextmanager
def fake_hostapd(stations: list[str], freq: int = 2437, silent: bool = False,
                 where: str | None = None) -> Iterator[tuple[str, list[str]]]:
    """A stand-in for hostapd's control socket: one datagram in, one reply datagram out to the sender's address
    (STA-FIRST, STA-NEXT <addr>, STATUS, PING); the commands it got are recorded. ``where``: the folder its
    socket's folder is made in (default: the temporary folder)."""
    d = tempfile.mkdtemp(prefix="keliu-fakehapd-", dir=where)
    path = os.path.join(d, "wlan0")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(0.2)
    got: list[str] = []
    done = threading.Event()
    macs = [s.splitlines()[0].lower() for s in stations]

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
                reply = stations[0] if stations else ""
            elif cmd.startswith("STA-NEXT "):
                mac = cmd.split()[1].lower()
                if mac not in macs:
                    reply = "FAIL\n"
                else:
                    i = macs.index(mac) + 1
                    reply = stations[i] if i < len(stations) else ""
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
        os.rmdir(d)
