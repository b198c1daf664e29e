"""hostapd's control interface (an edge): the AP's associated stations, polled into the sensor's pipeline.

hostapd listens on a unix datagram socket per interface (``ctrl_interface=/var/run/hostapd`` → the socket
``/var/run/hostapd/<iface>``). A client binds a socket of its own (hostapd sends each reply to the sender's
address, so an unbound client would get none), sends one command per datagram and reads one reply datagram.
The client's address is an abstract one the kernel picks (autobind), not a file: hostapd resolves a file address
in its own mount namespace, so a client under systemd's ``PrivateTmp=`` (keliu-stations.service) would never get
an answer to a socket in its private /tmp; abstract addresses belong to the network namespace, which hostapd
shares. Only hostapd can write to it: the socket is connected to hostapd's, and a connected datagram socket takes
datagrams from its peer alone. Commands:
``STA-FIRST`` answers the first station (empty when there is none), ``STA-NEXT <addr>`` the one after ``addr``
(empty after the last, ``FAIL`` when ``addr`` is gone), ``STATUS`` the radio (``freq=``). Without ``ATTACH`` no
unsolicited event arrives; a datagram starting with ``<`` (an event) is skipped anyway. :mod:`sensor.stations`
parses the replies; this module only talks.
"""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

from sensor.errors import StationsUnavailable
from sensor.stations import Station, parse_stations

log = logging.getLogger(__name__)
MAX_STATIONS = 2007  #: hostapd's association ids end at 2007: a longer walk is a loop, not a list
REPLY_MAX = 65536


class HostapdControl:
    """One client of one hostapd control socket (use as a context manager)."""

    def __init__(self, path: str | Path, timeout: float = 2.0) -> None:
        self.path, self.timeout = str(path), timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind("")  # autobind: an abstract address, nothing on the file system
            self._sock.settimeout(timeout)
            self._sock.connect(self.path)
        except OSError as exc:
            self.close()
            raise StationsUnavailable(f"hostapd control socket {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, command: str) -> str:
        """Send ``command``; the reply's text (events skipped)."""
        try:
            self._sock.send(command.encode())
            deadline = time.monotonic() + self.timeout
            while True:
                data = self._sock.recv(REPLY_MAX)
                if not data.startswith(b"<"):
                    return data.decode("utf-8", "replace")
                if time.monotonic() > deadline:
                    raise TimeoutError
        except TimeoutError as exc:
            raise StationsUnavailable(f"hostapd at {self.path} did not answer {command.split()[0]} within "
                                     f"{self.timeout:g} s") from exc
        except OSError as exc:
            raise StationsUnavailable(f"hostapd control socket {self.path}: {exc.strerror or exc}") from exc

    def stations(self) -> list[Station]:
        """Every station hostapd holds (STA-FIRST, then STA-NEXT until the list ends)."""
        out: list[Station] = []
        reply = self.request("STA-FIRST")
        while reply.strip() and not reply.startswith("FAIL") and len(out) < MAX_STATIONS:
            found = parse_stations(reply)
            if not found:
                break
            out.append(found[0])
            reply = self.request(f"STA-NEXT {found[0].mac}")
        return out

    def freq(self) -> int | None:
        """The radio's channel frequency in MHz (``STATUS``), None when hostapd does not say."""
        for line in self.request("STATUS").splitlines():
            key, _, value = line.partition("=")
            if key == "freq" and value.strip().isdigit():
                return int(value) or None
        return None


def poll(path: str | Path, feed: Callable[[list[Station], int | None, float], Any], *,
         interval: float = 10.0, clock: Callable[[], float] = time.time,
         sleep: Callable[[float], None] = time.sleep, stop: Callable[[], bool] = lambda: False,
         rounds: int | None = None) -> int:
    """Read the station list every ``interval`` seconds and hand it to ``feed(stations, freq, now)`` until
    ``stop()``; returns the number of polls. hostapd restarting (socket gone, no answer) is logged and retried at
    the next poll, never fatal: the sensor keeps running beside it."""
    n = 0
    for _ in _rounds(rounds):
        if stop():
            break
        now = clock()
        try:
            with HostapdControl(path) as ctl:
                feed(ctl.stations(), ctl.freq(), now)
            n += 1
        except StationsUnavailable as exc:
            log.warning("%s; trying again in %g s", exc, interval)
        sleep(max(0.0, interval - (clock() - now)))
    return n


def _rounds(rounds: int | None) -> Iterator[int]:
    i = 0
    while rounds is None or i < rounds:
        yield i
        i += 1
