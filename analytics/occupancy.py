"""Live occupancy (当前在店人数): who is in a store or a mall right now, from the last minutes of sightings (pure).

Like Cisco Spaces' "Right Now" (devices seen in the last N minutes, 10 by default), with the visit rules of
docs/METRICS.md instead of "any device heard", so that the live figure and the day's visitors count the same kind
of device. The sightings of the last ``window_s + visit_gap_s`` seconds are reduced with
:func:`analytics.visits.summarize` (the same thresholds, hysteresis and gap as the visits), and a device is

- **inside** (the headline figure): one of its runs of inside sightings (≥ ``stay_rssi``) reached ``visit_rssi``
  and its last inside sighting lies in the window — it entered and has not been gone for ``window_s``;
- **staying**: inside, and inside for ``min_dwell_s`` already (a visit by the day's rules so far);
- **nearby**: heard at ``passerby_rssi`` or above in the window, but not inside (passers-by right now);

and staff (:func:`analytics.metrics.known_staff` plus the devices flagged staff today) count in none of them.
Apart from these, **connected** counts the stations associated to the store's AP in the window (sightings of
basis "connected" from hostapd, :mod:`sensor.stations`): exact devices, but keyed from the station's own MAC, so
a connected phone is usually also among the probe-based devices under another id; the two are never added.
A run that entered more than ``visit_gap_s`` before the window and never came back to ``visit_rssi`` is missed
(the look-back is bounded so that the query stays small); docs/METRICS.md says so.

A mall's figures are the union of its stores' devices (a shopper heard by two stores' sensors counts once: device
ids are keyed with the mall's key). Counts carry the band of the day's visitors (:mod:`analytics.bands`: the
same linker errors, as rotating MACs of one phone inside the window are linked or not) and the basis
``linked_devices``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.bands import BASIS, band
from analytics.visits import NO_ENTER, U64, Rules, summarize

WINDOW_S = 600  #: Cisco Spaces' "Right Now" default: the last 10 minutes
MAX_WINDOW_S = 3600


def lookback_s(rules: Rules, window_s: int) -> int:
    """How far back the sightings are read: the window plus one visit gap (to see where a run entered)."""
    return window_s + rules.visit_gap_s


@dataclass(frozen=True, eq=False)
class Present:
    """The devices (sorted unique codes) in each state at one instant."""

    inside: U64
    staying: U64
    nearby: U64
    staff: U64  #: staff devices that would have been inside
    #: stations associated to the store's AP in the window (sightings of basis "connected", ``sensor.stations``):
    #: exact devices, keyed from the station's own MAC; counted apart from the probe-based figures above
    connected: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Present) and all(
            np.array_equal(getattr(self, f), getattr(other, f))
            for f in ("inside", "staying", "nearby", "staff", "connected"))


def _empty() -> U64:
    return np.zeros(0, dtype=np.uint64)


def present(ts_ms: npt.NDArray[np.int64], device: U64, rssi: npt.NDArray[np.int16], rules: Rules, now_ms: int,
            window_s: int = WINDOW_S, staff: U64 | None = None, connected: U64 | None = None) -> Present:
    """Who is inside at ``now_ms``, from the probe sightings of ``[now - lookback_s, now]`` (later ones are
    ignored: a sensor's clock ahead of the server's does not count early); ``connected``: the devices associated
    to the AP in the window (staff among them are dropped too)."""
    staff = _empty() if staff is None else np.asarray(staff, dtype=np.uint64)
    conn = np.setdiff1d(np.unique(_empty() if connected is None else np.asarray(connected, dtype=np.uint64)), staff)
    start = now_ms - lookback_s(rules, window_s) * 1000
    keep = (ts_ms >= start) & (ts_ms <= now_ms)
    if not keep.any():
        return Present(_empty(), _empty(), _empty(), _empty(), conn)
    state = summarize(ts_ms[keep], device[keep], rssi[keep], rules, start)
    since = now_ms - window_s * 1000
    runs = state.runs
    live = (runs.enter != NO_ENTER) & (runs.end >= since)
    inside = np.unique(runs.device[live])
    staying = np.unique(runs.device[live & (runs.end - runs.enter >= rules.min_dwell_ms)])
    heard = np.unique(state.seen.device[state.seen.last >= since])
    nearby = np.setdiff1d(heard, inside, assume_unique=True)
    return Present(np.setdiff1d(inside, staff), np.setdiff1d(staying, staff), np.setdiff1d(nearby, staff),
                   np.intersect1d(inside, staff), conn)


def union(parts: Sequence[Present]) -> Present:
    """A mall's devices from its stores': each device once; inside anywhere is not nearby anywhere."""
    if not parts:
        return Present(_empty(), _empty(), _empty(), _empty(), _empty())
    inside = np.unique(np.concatenate([p.inside for p in parts]))
    staying = np.unique(np.concatenate([p.staying for p in parts]))
    nearby = np.setdiff1d(np.unique(np.concatenate([p.nearby for p in parts])), inside, assume_unique=True)
    staff = np.unique(np.concatenate([p.staff for p in parts]))
    return Present(inside, staying, nearby, staff, np.unique(np.concatenate([p.connected for p in parts])))


def figures(p: Present, *, now: float, window_s: int, last_sighting: float | None) -> dict[str, Any]:
    """The live figures as the API returns them (``last_sighting``: epoch seconds of the newest sighting read, or
    None when nothing was heard in the look-back)."""
    n = len(p.inside)
    return {
        "as_of": now,
        "window_s": window_s,
        "occupancy": n,
        "staying": len(p.staying),
        "nearby": len(p.nearby),
        "staff_excluded": len(p.staff),
        "band": band("visitors", float(n)),
        "basis": BASIS["visitors"],
        #: associated to the AP in the window: exact (basis "connected"), not added to the probe-based figures
        "connected": len(p.connected),
        "last_sighting_age_s": None if last_sighting is None else round(max(0.0, now - last_sighting), 1),
    }
