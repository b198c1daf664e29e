"""The text that ``keliu sensor parse`` prints: a batch of identified probe (and association) requests as CSV or JSON lines (pure).

The batch's numpy columns are turned into strings a column at a time and the rows are joined with one ``%`` format
each, because formatting a million rows one ``datetime``/``csv.writer`` call at a time cost 4× more than parsing and
identifying them. Each text is made once per distinct value: a time's date and second once per distinct second
(``np.datetime_as_string``; the format adds its microseconds and UTC offset), the signal, frequency and channel once
per (signal, frequency) pair, the randomized flag and kind once per pair, an SSID once per distinct SSID (the
directed probes' SSIDs gathered from the buffer as rows of one byte array), which cut the text's time by a quarter
to a third (docs/SENSOR.md, "Performance"). The result is byte for byte what ``datetime.isoformat`` and
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

from sensor.frames import KINDS, NO_RSSI, ProbeBatch, channel_number

FIELDS = ("ts", "device", "rssi", "freq", "channel", "seq", "ssid", "randomized", "kind")
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


def _clock(ts: np.ndarray, tz: tzinfo) -> tuple[list[str], list[int], list[str]]:
    """Per time of ``ts``: its local date and time to the second (``2026-01-05T09:38:34``, formatted once per
    distinct second), its microseconds and its UTC offset's suffix (``+08:00``), the three parts of
    ``datetime.fromtimestamp(t, tz).isoformat(timespec="microseconds")``.

    Microseconds are rounded half to even from the fractional part, as ``fromtimestamp`` does. The UTC offset is
    looked up once per distinct minute (zone transitions fall on whole minutes; a minute whose two ends disagree
    is looked up per second)."""
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
    seconds, at = np.unique(sec + off, return_inverse=True)
    text = np.array(np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").tolist(), object)
    kinds = np.unique(off)
    if len(kinds) == 1:
        suffixes = [_offset_text(int(kinds[0]))] * len(sec)
    else:
        table = {int(o): _offset_text(int(o)) for o in kinds.tolist()}
        suffixes = [table[o] for o in off.tolist()]
    return text[at].tolist(), us.tolist(), suffixes


def local_times(ts: np.ndarray, tz: tzinfo) -> list[str]:
    """``datetime.fromtimestamp(t, tz).isoformat(timespec="microseconds")`` of every ``t`` in ``ts``
    (:func:`_clock`'s parts joined)."""
    if len(ts) == 0:
        return []
    return [f"{t}.{u:06d}{z}" for t, u, z in zip(*_clock(ts, tz))]


def _csv_field(text: str) -> str:
    # one field as csv.writer writes it (quoted when it holds a comma, a quote or a line break); the empty second
    # field keeps an empty SSID from being written as the lone-field '""'
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([text, ""])
    return buf.getvalue()[:-2]


def _table(key: np.ndarray, make: Callable[[int], str]) -> list[str]:
    """Per value of ``key`` (integers of a small set), ``make(value)``: made once per distinct value."""
    values, at = np.unique(key, return_inverse=True)
    out: list[str] = np.array([make(v) for v in values.tolist()], object)[at].tolist()
    return out


def _ssids(batch: ProbeBatch, encode: dict[bytes, str], quote: Callable[[str], str]) -> list[str]:
    """Each probe's SSID as its field's text (``quote``), through ``encode`` (kept between batches): the directed
    probes' SSIDs are read from the buffer as rows of one byte array and looked up once per distinct SSID."""
    empty = encode.get(b"")
    if empty is None:
        empty = encode[b""] = quote("")
    if batch.ssids is not None:  # a batch made of records: its SSIDs given
        names = batch.ssids
        named = [i for i, name in enumerate(names) if name]
        index: dict[bytes, int] = {}
        at = [index.setdefault(names[i], len(index)) for i in named]
        distinct = list(index)
    else:
        rows = np.flatnonzero(batch.ssid_end != batch.ssid_start)
        named = rows.tolist()
        if not named:
            return [empty] * len(batch)
        start = batch.ssid_start[rows]
        length = batch.ssid_end[rows] - start
        width = int(length.max())
        buf = np.frombuffer(batch.buf, np.uint8)
        pos = start[:, None] + np.arange(width)
        inside = pos < (start + length)[:, None]
        cells = np.zeros((len(rows), width + 1), np.uint8)
        cells[:, :width] = np.where(inside, buf[np.minimum(pos, len(buf) - 1)], 0)
        cells[:, width] = length  # SSIDs that differ only in trailing zero bytes stay apart
        keys = np.ascontiguousarray(cells).view(np.dtype((np.void, width + 1))).ravel()
        uniq, inverse = np.unique(keys, return_inverse=True)
        distinct = [row[:row[-1]] for row in map(bytes, uniq.tolist())]  # each row's SSID: its length
        at = inverse.tolist()
    texts = []
    for raw in distinct:
        text = encode.get(raw)
        if text is None:
            if len(encode) >= 4096:  # SSIDs are few; a crafted capture may not be
                encode.clear()
            text = encode[raw] = quote(raw.decode("utf-8", "replace"))
        texts.append(text)
    out = [empty] * len(batch)
    for i, k in zip(named, at):
        out[i] = texts[k]
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
        day, us, zone = _clock(batch.ts, self.tz)
        dev = [null if d is None else d for d in devices.tolist()] if csv_ else \
            [null if d is None else f'"{d}"' for d in devices.tolist()]
        # signal, frequency and channel: one text per distinct (signal, frequency)
        between = "," if csv_ else ", "
        freq_key, chan_key = ("", "") if csv_ else ('"freq": ', '"channel": ')

        def radio(key: int) -> str:
            r, f = (key >> 32) + NO_RSSI, key & 0xFFFFFFFF
            return (f"{null if r == NO_RSSI else r}{between}{freq_key}{null if f == 0 else f}{between}{chan_key}"
                    f"{null if f == 0 else channel_number(f)}")

        rfc = _table(((batch.rssi - NO_RSSI) << 32) | batch.freq, radio)
        ssid = _ssids(batch, self._ssid, _csv_field if csv_ else (lambda s: json.dumps(s, ensure_ascii=False)))
        # randomized and kind: one text per pair (a batch of probe requests only carries no kind column)
        rnd = ((batch.mac >> np.uint64(41)) & np.uint64(1)).astype(np.int64)
        kind = rnd if batch.kind is None else rnd + 2 * batch.kind.astype(np.int64)
        flags = ("False", "True") if csv_ else ("false", "true")
        kind_key = "" if csv_ else '"kind": '
        quote = "" if csv_ else '"'
        rk = _table(kind, lambda k: f"{flags[k & 1]}{between}{kind_key}{quote}{KINDS[k >> 1]}{quote}")
        cols = [day, us, zone, dev, rfc, batch.seq.tolist(), ssid, rk]
        if csv_:
            line = "%s.%06d%s,%s,%s,%d,%s,%s"
        else:
            line = ('{"ts": "%s.%06d%s", "device": %s, "rssi": %s, "seq": %d, "ssid": %s, "randomized": %s')
        if self.show_mac:
            cols.append(_macs(batch.mac))
            line += ",%s" if csv_ else ', "mac": "%s"'
        line += "\n" if csv_ else "}\n"
        return "".join(map(line.__mod__, zip(*cols)))
