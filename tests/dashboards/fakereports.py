"""A stand-in for ``analytics.report`` over the known scenario (pure), injected as ``dashboards.reports``.

It follows the shapes of docs/CONTRACTS.md ("Analytics → dashboards") so that the API and page tests do not
depend on the analytics pipeline; tests/dashboards/test_builtin_analytics.py runs the real one.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from analytics.bands import uncertainty
from tests.dashboards.scenario import D1, MALLS, ROLLUPS, STORES, epoch

DWELL = {"dwell_lt5m": "<5m", "dwell_5_20m": "5-20m", "dwell_20_60m": "20-60m", "dwell_1_6h": "1-6h",
         "dwell_gt6h": ">6h"}
SCALARS = ("visitors", "passersby", "new_visitors", "repeat_visitors", "wifi_logins", "new_members",
           "staff_excluded")
#: shoppers of m1 on D1 who visited both s1 and s2 (counted once in the mall totals)
OVERLAP = {("m1", D1): 5}
TRANSITIONS = {("m1", D1): [{"from": "s1", "to": "s2", "count": 4}, {"from": "s2", "to": "s1", "count": 1}]}
LAST_REPORT = {"s1": float(epoch(D1, 23)), "s2": float(epoch(D1, 22))}  # s3's sensor never reported
#: connected shoppers (the APs' stations) per store and day; of m1's on D1, 2 were connected at both stores
CONNECTED = {("s1", D1): 6, ("s2", D1): 3}
CONNECTED_OVERLAP = {("m1", D1): 2}


def connected(n: int | None) -> dict[str, Any]:
    """A ``connected`` block of ``n`` visitors with one 25-minute visit each (None: no station seen)."""
    return {"basis": "connected_stations", "visitors": n, "visits": n, "median_dwell_s": None if not n else 1500.0,
            "dwell_buckets": {v: None if n is None else (n if v == "20-60m" else 0) for v in DWELL.values()},
            "staff_excluded": None if n is None else 0, "calibration": None, "coverage": None,
            "last_poll": None}


def _known(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def store_day(store: str, day: date) -> dict[str, Any]:
    r = ROLLUPS.get((store, "1d", day, 0))
    if r is None:
        return {**{k: 0 for k in SCALARS}, "capture_rate": 0.0, "median_dwell_s": None,
                "dwell_buckets": {v: 0 for v in DWELL.values()}, "loyalty_buckets": {
                    "first_time": 0, "daily": 0, "weekly": 0, "monthly": 0, "occasional": 0},
                "hourly_visitors": [0] * 24, "hourly_passersby": [0] * 24}
    hv, hp = [0] * 24, [0] * 24
    hours = [(h, x) for (s, p, d, h), x in ROLLUPS.items() if s == store and p == "1h" and d == day]
    for h, x in hours:
        hv[h], hp[h] = x["visitors"], x["passersby"]
    if not hours:
        hv[12], hp[12] = r["visitors"], r["passersby"]
    repeat = r["repeat_visitors"]
    return {**{k: r.get(k, 0) for k in SCALARS}, "staff_excluded": 2, "capture_rate": r["capture_rate"],
            "median_dwell_s": r["median_dwell_s"], "dwell_buckets": {v: r[k] for k, v in DWELL.items()},
            "loyalty_buckets": {"first_time": r["new_visitors"], "daily": repeat // 4, "weekly": repeat // 2,
                                "monthly": repeat - repeat // 4 - repeat // 2, "occasional": 0},
            "hourly_visitors": hv, "hourly_passersby": hp}


def _range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _merge(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: sum(p[k] for p in parts) for k in SCALARS}
    seen = out["visitors"] + out["passersby"]
    out["capture_rate"] = out["visitors"] / seen if seen else 0.0
    meds = sorted((p["median_dwell_s"], p["visitors"]) for p in parts if p["median_dwell_s"] is not None)
    half, acc, out["median_dwell_s"] = sum(w for _, w in meds) / 2, 0, None
    for m, w in meds:  # visit-weighted median of the daily medians, as docs/METRICS.md says
        acc += w
        if acc >= half:
            out["median_dwell_s"] = m
            break
    for key in ("dwell_buckets", "loyalty_buckets"):
        out[key] = {k: sum(p[key][k] for p in parts) for k in parts[0][key]}
    for key in ("hourly_visitors", "hourly_passersby"):
        out[key] = [sum(p[key][h] for p in parts) for h in range(24)]
    return out


#: the fake live occupancy per store
LIVE = {"s1": 7, "s2": 4}


class FakeReports:
    def __init__(self, last_report: Mapping[str, float] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        #: the ``until`` of each range call, in order (the previous period's cut while the current one is not over)
        self.untils: list[tuple[str, float | None]] = []
        self.last = dict(LAST_REPORT if last_report is None else last_report)

    def store_range(self, engine: Any, store_id: str, start: date, end: date, cfg: Any = None,
                    until: float | None = None) -> dict[str, Any]:
        self.untils.append(("store_range", until))
        self.calls.append(("store_range", store_id, start, end))
        days = [(d, store_day(store_id, d)) for d in _range(start, end)]
        out = _merge([p for _, p in days])
        out["days"] = [{"date": d, **{k: v for k, v in p.items() if not isinstance(v, (dict, list))}}
                       for d, p in days]
        return out

    def mall_range(self, engine: Any, mall_id: str, start: date, end: date, cfg: Any = None,
                   until: float | None = None) -> dict[str, Any]:
        self.untils.append(("mall_range", until))
        self.calls.append(("mall_range", mall_id, start, end))
        stores = []
        for sid, (m, name) in STORES.items():
            if m == mall_id:
                merged = _merge([store_day(sid, d) for d in _range(start, end)])
                row = {"id": sid, "name": name, **{k: v for k, v in merged.items() if not isinstance(v, (dict, list))}}
                row["uncertainty"] = uncertainty(row)
                row["connected"] = connected(_known([CONNECTED.get((sid, d)) for d in _range(start, end)]))
                stores.append(row)
        totals = {k: sum(s[k] for s in stores) for k in SCALARS}
        totals["visitors"] -= sum(OVERLAP.get((mall_id, d), 0) for d in _range(start, end))
        seen = totals["visitors"] + totals["passersby"]
        totals["capture_rate"] = totals["visitors"] / seen if seen else 0.0
        totals["uncertainty"] = uncertainty(totals)
        n = _known([s["connected"]["visitors"] for s in stores])
        totals["connected"] = connected(None if n is None else n - sum(
            CONNECTED_OVERLAP.get((mall_id, d), 0) for d in _range(start, end)))
        transitions = [t for d in _range(start, end) for t in TRANSITIONS.get((mall_id, d), [])]
        return {"stores": stores, "totals": totals, "transitions": transitions}

    def operator_range(self, engine: Any, start: date, end: date, cfg: Any = None,
                       until: float | None = None) -> dict[str, Any]:
        self.untils.append(("operator_range", until))
        self.calls.append(("operator_range", start, end))
        malls = [{"id": m, "name": name, "totals": self.mall_range(engine, m, start, end)["totals"]}
                 for m, name in MALLS.items()]
        totals: dict[str, Any] = {k: sum(m["totals"][k] for m in malls) for k in SCALARS}
        seen = totals["visitors"] + totals["passersby"]
        totals["capture_rate"] = totals["visitors"] / seen if seen else 0.0
        totals["uncertainty"] = uncertainty(totals)
        totals["connected"] = connected(_known([m["totals"]["connected"]["visitors"] for m in malls]))
        return {"malls": malls, "totals": totals}

    def last_report(self, engine: Any, store_id: str) -> float | None:
        return self.last.get(store_id)

    def store_live(self, engine: Any, cfg: Any, store_id: str, now: float, window_s: int) -> dict[str, Any]:
        self.calls.append(("store_live", store_id, now, window_s))
        return {"store": store_id, "as_of": now, "window_s": window_s, "occupancy": LIVE.get(store_id, 0),
                "staying": 0, "nearby": 0, "staff_excluded": 0, "band": [0.0, 0.0], "basis": "linked_devices",
                "last_sighting_age_s": None}

    def mall_live(self, engine: Any, cfg: Any, mall_id: str, store_ids: list[str], now: float,
                  window_s: int) -> dict[str, Any]:
        self.calls.append(("mall_live", mall_id, tuple(store_ids), now, window_s))
        stores = [self.store_live(engine, cfg, s, now, window_s) for s in store_ids]
        return {**stores[0], "mall": mall_id, "occupancy": sum(s["occupancy"] for s in stores), "stores": stores}
