"""The text that ``keliu sensor parse`` prints: a batch of identified probe requests as CSV or JSON lines (pure).

The batch's numpy columns are turned into strings a column at a time (times through ``np.datetime_as_string``, the
small value sets — signal, frequency, channel, SSID — through tables built once per distinct value) and the rows are
joined with one ``%`` format each, because formatting a million rows one ``datetime``/``csv.writer`` call at a time
cost 4× more than parsing and identifying them. The result is byte for byte what ``datetime.isoformat`` and
``csv.DictWriter`` / ``json.dumps`` printed per row before (tests/sensor/test_rows.py holds that reference).
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal

import numpy as np

from sensor.frames import NO_RSSI, ProbeBatch, channel_number

FIELDS = ("ts", "device", "rssi", "freq", "channel", "seq", "ssid", "randomized")
Format = Literal["csv", "jsonl"]


def header(fmt: Format, show_mac: bool) -> str:
    """The CSV header line (JSON lines have none)."""
    return ",".join(FIELDS + (("mac",) if show_mac else ())) + "\n" if fmt == "csv" else ""


def _offset_text(seconds: int) -> str:
    # the suffix ``datetime.isoformat`` writes for this UTC offset ("+08:00", "+05:45", "-03:30")
    return datetime(2000, 1, 1, tzinfo=timezone(timedelta(seconds=seconds))).isoformat()[19:]


def _offset(tz: tzinfo, t: int) -> int:
    off = datetime.fromtimestamp(t, tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def local_times(ts: np.ndarray, tz: tzinfo) -> list[str]:
    """``datetime.fromtimestamp(t, tz).isoformat(timespec="microseconds")`` of every ``t`` in ``ts``.

    Microseconds are rounded half to even from the fractional part, as ``fromtimestamp`` does. The UTC offset is
    looked up once per distinct minute (zone transitions fall on whole minutes; a minute whose two ends disagree
    is looked up per second)."""
    if len(ts) == 0:
        return []
    frac, whole = np.modf(np.asarray(ts, np.float64))
    us = np.rint(frac * 1e6).astype(np.int64)
    sec = whole.astype(np.int64)
    carry = us >= 1_000_000
    sec += carry
    us -= carry * 1_000_000
    minutes, inverse = np.unique(sec // 60, return_inverse=True)
    offs = np.empty(len(minutes), np.int64)
    exact: list[int] = []
    for k, m in enumerate(minutes.tolist()):
        a, b = _offset(tz, m * 60), _offset(tz, m * 60 + 59)
        offs[k] = a
        if a != b:
            exact.append(k)
    off = offs[inverse]
    for k in exact:
        rows = np.flatnonzero(inverse == k)
        off[rows] = [_offset(tz, t) for t in sec[rows].tolist()]
    local = ((sec + off) * 1_000_000 + us).astype("datetime64[us]")
    text: list[str] = np.datetime_as_string(local, unit="us").tolist()
    kinds = np.unique(off)
    if len(kinds) == 1:
        suffix = _offset_text(int(kinds[0]))
        return [t + suffix for t in text]
    suffixes = {int(o): _offset_text(int(o)) for o in kinds.tolist()}
    return [t + suffixes[o] for t, o in zip(text, off.tolist())]


def _csv_field(text: str) -> str:
    # one field as csv.writer writes it (quoted when it holds a comma, a quote or a line break); the empty second
    # field keeps an empty SSID from being written as the lone-field '""'
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([text, ""])
    return buf.getvalue()[:-2]


def _table(values: np.ndarray, encode: dict[int, str], make: Callable[[int], str]) -> list[str]:
    """``values`` (small integers) as strings through a table built once per distinct value."""
    table = {v: make(v) for v in np.unique(values).tolist()}
    table.update(encode)
    return list(map(table.__getitem__, values.tolist()))


def _ssids(batch: ProbeBatch, encode: dict[bytes, str], quote: Callable[[str], str]) -> list[str]:
    empty = encode.get(b"")
    if empty is None:
        empty = encode[b""] = quote("")
    out = [empty] * len(batch)
    named: list[int] = (np.flatnonzero(batch.ssid_end != batch.ssid_start).tolist() if batch.ssids is None
                        else [i for i, s in enumerate(batch.ssids) if s])
    for i in named:
        raw = batch.ssid(i)
        text = encode.get(raw)
        if text is None:
            if len(encode) >= 4096:  # SSIDs are few; a crafted capture may not be
                encode.clear()
            text = encode[raw] = quote(raw.decode("utf-8", "replace"))
        out[i] = text
    return out


def _macs(mac: np.ndarray) -> list[str]:
    hexes = [f"{m:012x}" for m in mac.tolist()]
    return [f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}" for h in hexes]


class RowWriter:
    """Formats batches as text; keeps the SSID encodings between batches (the same few SSIDs recur)."""

    def __init__(self, fmt: Format, tz: tzinfo, show_mac: bool) -> None:
        self.fmt, self.tz, self.show_mac = fmt, tz, show_mac
        self._ssid: dict[bytes, str] = {}

    def text(self, batch: ProbeBatch, devices: np.ndarray) -> str:
        """The lines of ``batch`` (``devices``: its device ids, ``str`` or None, from ``Identifier``)."""
        n = len(batch)
        if n == 0:
            return ""
        csv_ = self.fmt == "csv"
        null = "" if csv_ else "null"
        ts = local_times(batch.ts, self.tz)
        dev = [null if d is None else d for d in devices.tolist()] if csv_ else \
            [null if d is None else f'"{d}"' for d in devices.tolist()]
        rssi = _table(batch.rssi, {NO_RSSI: null}, str)
        freq = _table(batch.freq, {0: null}, str)
        chan = _table(batch.freq, {0: null}, lambda f: str(channel_number(f)))
        seq = list(map(str, batch.seq.tolist()))
        ssid = _ssids(batch, self._ssid, _csv_field if csv_ else (lambda s: json.dumps(s, ensure_ascii=False)))
        rnd = ((batch.mac >> np.uint64(41)) & np.uint64(1)).astype(bool)
        flag = (np.array(["False", "True"]) if csv_ else np.array(["false", "true"]))[rnd.astype(np.int64)].tolist()
        cols = [ts, dev, rssi, freq, chan, seq, ssid, flag]
        if csv_:
            line = "%s,%s,%s,%s,%s,%s,%s,%s"
        else:
            line = ('{"ts": "%s", "device": %s, "rssi": %s, "freq": %s, "channel": %s, "seq": %s, "ssid": %s, '
                    '"randomized": %s')
        if self.show_mac:
            cols.append(_macs(batch.mac))
            line += ",%s" if csv_ else ', "mac": "%s"'
        line += "\n" if csv_ else "}\n"
        return "".join(map(line.__mod__, zip(*cols)))
