"""Replay of pcap and pcapng captures through the sensor pipeline (an edge: it reads a file and sleeps).

At the recorded speed (``speed=1``), N times faster (``speed=N``) or as fast as possible (``speed=None``). With
``loop`` the file plays forever, its timestamps moved so that the first frame happens *now*, and each further
round one more whole number of days later (so time of day stays as recorded and rounds never overlap) — the demo
runs ``keliu sensor replay <pcap> --store demo-store --speed 60 --loop``. Without ``loop`` the recorded
timestamps are kept.

``follow`` (the demo: ``keliu sensor replay <pcap> --store S --follow-clock``) follows the wall clock: the recording
is moved by whole days onto yesterday and then today (its time of day kept, in the store's UTC offset), everything up
to now is fed at once, the rest as the clock reaches it, and at the end of the file the next round is tomorrow. No probe ever lies in
the future, and "today" advances at midnight as the clock does.

The replay's position (file, round, probes done, time offset) is saved in the spool together with the spooled
sightings, so a replay killed with ``kill -9`` continues where its last spooled batch ended; anything fed again
produces the same sighting ids and is stored once.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sensor.errors import CaptureFormatError
from sensor.frames import Parser, ProbeBatch
from sensor.pcap import LINKTYPE_RADIOTAP, pcap_header, record_starts
from sensor.pipeline import Pipeline

log = logging.getLogger(__name__)


CHUNK = 8 << 20


def capture_chunks(path: str | Path, chunk: int = CHUNK) -> Iterator[bytes]:
    """The capture as a sequence of small, complete capture buffers (each with the file header): a classic pcap
    is read ``chunk`` bytes at a time and cut at record boundaries, so memory stays flat however large the file;
    a pcapng file is read whole."""
    head, pieces = _pieces(path, chunk)
    if pieces is None:
        yield head
        return
    for piece, _starts in pieces:
        yield head + piece


def _pieces(path: str | Path, chunk: int) -> tuple[bytes, Iterator[tuple[bytes, np.ndarray]] | None]:
    """``(file header, pieces)``; each piece is whole records plus their frame-data offsets (walked once). For
    a file that is not a classic pcap: ``(whole file, None)``."""
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    except OSError as exc:
        raise CaptureFormatError(f"{path}: {exc.strerror or exc}") from exc
    head = fh.read(24)
    info = pcap_header(head)
    if info is None:
        with fh:
            return head + fh.read(), None
    endian = info[0]

    def gen() -> Iterator[tuple[bytes, np.ndarray]]:
        with fh:
            rest = b""
            while True:
                data = fh.read(chunk)
                buf = rest + data
                starts, cut = record_starts(buf, endian, first=0)
                if len(starts):
                    yield buf[:cut], starts
                rest = buf[cut:]
                if not data:
                    return

    return head, gen()


def truncated(path: str | Path) -> int:
    """Bytes at the end of a classic pcap that are not a whole record (a capture cut short: copied while being
    written, or a partial download); 0 for a whole file or a pcapng file."""
    path = Path(path)
    head, pieces = _pieces(path, CHUNK)
    if pieces is None:
        return 0
    whole = len(head) + sum(len(piece) for piece, _starts in pieces)
    return path.stat().st_size - whole


def iter_batches(parser: Parser, path: str | Path, size: int = 16384) -> Iterator[ProbeBatch]:
    """Every probe of the capture in ``path``, as column batches, reading it piece by piece."""
    head, pieces = _pieces(path, CHUNK)
    info = pcap_header(head)
    if pieces is None or info is None or info[2] != LINKTYPE_RADIOTAP:
        for piece in ([head] if pieces is None else (head + p for p, _s in pieces)):
            yield from parser.batches(piece, size)
        return
    endian, scale, _lt = info
    for piece, starts in pieces:
        for i in range(0, len(starts), size):
            yield parser.parse_radiotap(piece, starts[i:i + size], endian, scale)


def _span(parser: Parser, path: Path) -> tuple[float, float]:
    """First and last timestamp of the probes in the capture (a throw-away parse)."""
    lo, hi = math.inf, -math.inf
    for b in iter_batches(parser.fresh(), path):
        if len(b):
            lo, hi = min(lo, float(b.ts.min())), max(hi, float(b.ts.max()))
    if lo == math.inf:
        raise CaptureFormatError("the capture holds no probe requests")
    return lo, hi


def replay(path: str | Path, pipe: Pipeline, *, speed: float | None = None, loop: bool = False,
           clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
           stop: Callable[[], bool] = lambda: False, rounds: int | None = None,
           follow: int | None = None) -> int:
    """Feed the capture to ``pipe``; returns the number of probes fed. ``rounds`` bounds ``loop`` (tests).
    ``follow``: follow the wall clock (see the module docstring), the store's UTC offset in seconds."""
    path = Path(path).resolve()
    size = path.stat().st_size
    if follow is not None:
        speed, loop = 1.0, True
    first, last = _span(pipe.parser, path) if loop or speed is not None else (0.0, 0.0)
    # following the clock, each round is the next day (a capture of one store-day, see keliu.demo)
    span_days = 1 if follow is not None else max(1, math.ceil((last - first + 1) / 86400))
    state = pipe.spool.load_state()
    resume = state if state.get("file") == str(path) and state.get("size") == size else {}
    if follow is not None:
        # yesterday first (a sensor that ran yesterday too), then today: the frames already due are fed at once
        # (again, after a restart: their sighting ids are the same, they are stored once)
        resume = {"offset": follow_offset(first, clock(), follow) - 86400}
    if loop and follow is None and resume and resume.get("offset") is not None and (
            last + float(resume["offset"]) + int(resume.get("round", 0)) * span_days * 86400 < clock() - 86400):
        # a looping replay stopped more than a day ago: start again at now rather than in the past (not when
        # following the clock: its offset is the clock's, and yesterday's round may well have ended over a day ago)
        resume = {}
    rnd = int(resume.get("round", 0))
    skip = int(resume.get("probes", 0))
    base = resume.get("offset")
    if base is None:
        base = clock() - first if loop else 0.0
    if resume and follow is None:
        log.info("replay resumes %s at round %d, probe %d", path.name, rnd, skip)
    fed = 0
    start = skip
    while not stop():
        offset = float(base) + rnd * span_days * 86400
        position = {"file": str(path), "size": size, "round": rnd, "probes": 0, "offset": base}
        wall0 = clock()
        t0 = first + offset
        if follow is not None:
            wall0 = t0  # pace on the absolute clock: what is due is fed now, the rest when it falls due
        done = 0
        for batch in _batches(pipe.parser, path, skip):
            batch = batch.shifted(offset)
            if speed is None:
                pipe.feed(batch, {**position, "probes": start + done + len(batch)})
                done += len(batch)
                fed += len(batch)
            else:
                if skip and not done:  # resuming: the first probe is due now
                    wall0 = clock() - (float(batch.ts[0]) - t0) / speed
                k = _paced(pipe, batch, position, start + done, speed, t0, wall0, clock, sleep, stop)
                done += k
                fed += k
            if stop():
                break
        skip = 0
        if stop() or not loop:
            pipe.close({**position, "probes": start + done})
            break
        start = 0
        rnd += 1
        if rounds is not None and rnd >= rounds:
            pipe.close({**position, "round": rnd})
            break
        pipe.checkpoint({**position, "round": rnd, "probes": 0})
    return fed


def follow_offset(first: float, now: float, utc_offset_s: int) -> float:
    """Whole days that move the recording's first day onto the day of ``now`` (both store-local). Pure."""
    day = 86400
    return float(((now + utc_offset_s) // day - (first + utc_offset_s) // day) * day)


def _batches(parser: Parser, path: Path, skip: int) -> Iterator[ProbeBatch]:
    for batch in iter_batches(parser, path, size=8192):
        if skip >= len(batch):
            skip -= len(batch)
            continue
        if skip:
            batch, skip = batch.slice(skip, len(batch)), 0
        yield batch


def _paced(pipe: Pipeline, batch: ProbeBatch, position: dict[str, Any], done: int, speed: float, t0: float,
           wall0: float, clock: Callable[[], float], sleep: Callable[[float], None], stop: Callable[[], bool]) -> int:
    """Feed ``batch`` as its frames fall due (capture time / ``speed`` after ``wall0``)."""
    due = np.maximum.accumulate(batch.ts)  # a capture's clock can step back a little; never wait backwards
    i, n = 0, len(batch)
    while i < n and not stop():
        reach = t0 + (clock() - wall0) * speed
        j = int(np.searchsorted(due, reach, side="right"))
        if j > i:
            pipe.feed(batch.slice(i, j), {**position, "probes": done + j})
            i = j
        else:
            wait = (float(due[i]) - reach) / speed
            pipe.tick()
            sleep(min(max(wait, 0.01), 0.5))
    return i
