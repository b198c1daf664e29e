"""View models of the built-in dashboard (pure): analytics reports in, everything the page shows out.

A view is a dict with ``kpis`` (the cards), ``charts`` (the series ECharts draws) and ``tables`` (titled tables of
cells ``{"text", "value"}``). The page renders exactly these texts and the CSV export writes exactly these tables,
so the export holds the numbers on screen. Every figure of the current period is shown next to the same weekdays
one week earlier (``previous``), which the caller fetches with :func:`previous_range`; while the current period is
not over (it ends today), up to the same time of day one week earlier (:func:`previous_until`), so that today so far
is not set beside a whole day.

Reports are the dicts of ``analytics.report`` (docs/CONTRACTS.md "Analytics → dashboards").
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dashboards.builtin import i18n
from dashboards.builtin.i18n import t

Report = Mapping[str, Any]
Json = dict[str, Any]

#: the store metrics on the cards and in the summary table, with how each is formatted
KPIS: tuple[tuple[str, str], ...] = (
    ("passersby", "int"),
    ("visitors", "int"),
    ("capture_rate", "ratio"),
    ("median_dwell_s", "duration"),
    ("new_visitors", "int"),
    ("repeat_visitors", "int"),
    ("wifi_logins", "int"),
    ("new_members", "int"),
)
MALL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("passersby", "int"),
    ("visitors", "int"),
    ("capture_rate", "ratio"),
    ("median_dwell_s", "duration"),
    ("wifi_logins", "int"),
    ("new_members", "int"),
)
#: mall totals: analytics de-duplicates shoppers across stores; a mall-wide median dwell is not reported
MALL_TOTALS: tuple[tuple[str, str], ...] = tuple(c for c in MALL_COLUMNS if c[0] != "median_dwell_s")
TOP_TRANSITIONS = 10


def previous_range(start: date, end: date) -> tuple[date, date]:
    """The same weekdays one week earlier."""
    return start - timedelta(days=7), end - timedelta(days=7)


def previous_until(start: date, end: date, tz: str, now: float) -> float | None:
    """While [start, end] is not over at ``now`` (today, in the time zone ``tz``, is one of its days): the same
    wall-clock time one week earlier (epoch seconds), where the previous period's figures stop
    (``analytics.report.store_range``'s ``until``); else ``None`` (whole days on both sides)."""
    local = datetime.fromtimestamp(now, ZoneInfo(tz))
    if not start <= local.date() <= end:
        return None
    return datetime.combine(local.date() - timedelta(days=7), local.time(), ZoneInfo(tz)).timestamp()


def _compared(lang: str, start: date, end: date, until: float | None, tz: str) -> Json:
    """The view's ``previous_range`` (with ``until``: the local time the previous period stops at, or ``None``)
    and ``compare_note``."""
    pstart, pend = previous_range(start, end)
    at = None if until is None else datetime.fromtimestamp(until, ZoneInfo(tz)).strftime("%H:%M")
    note = (t(lang, "compare_note", start=pstart.isoformat(), end=pend.isoformat()) if at is None else
            t(lang, "compare_note_until", start=pstart.isoformat(), end=pend.isoformat(), time=at))
    return {"previous_range": {"start": pstart.isoformat(), "end": pend.isoformat(), "until": at},
            "compare_note": note}


def plain(value: Any) -> Any:
    """Dates as ISO strings, mappings and sequences recursively, so that the report can go out as JSON."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _num(report: Report, key: str) -> float | None:
    v = report.get(key)
    return None if v is None else float(v)


def fmt(lang: str, kind: str, value: float | None) -> str:
    if kind == "ratio":
        return i18n.percent(value)
    if kind == "duration":
        return i18n.duration(lang, value)
    return i18n.integer(value)


#: the unit of each kind of number (the CSV export writes plain numbers and names the unit in the header)
UNITS = {"int": "count", "ratio": "ratio", "duration": "s"}


def cell(lang: str, kind: str, value: Any) -> Json:
    if kind == "text":
        return {"text": str(value), "value": value}
    v = None if value is None else float(value)
    return {"text": fmt(lang, kind, v), "value": v, "unit": UNITS[kind]}


def table(tid: str, title: str, columns: Sequence[str], rows: list[list[Json]], *, sortable: bool = False) -> Json:
    return {"id": tid, "title": title, "columns": list(columns), "rows": rows, "sortable": sortable}


def _outward(kind: str, band: Sequence[float]) -> tuple[float, float]:
    """A band's ends as shown: a count's widened to whole numbers, other kinds as they are."""
    lo, hi = float(band[0]), float(band[1])
    return (math.floor(lo), math.ceil(hi)) if kind == "int" else (lo, hi)


def band_text(lang: str, kind: str, band: Sequence[float] | None) -> str:
    """A calibrated band as shown on a card (``85–148``, ``20.6%–31.0%``); "" without a band (no data, or a figure
    without one)."""
    if not band:
        return ""
    lo, hi = _outward(kind, band)
    return f"{fmt(lang, kind, lo)}–{fmt(lang, kind, hi)}"


def band_cells(lang: str, kind: str, band: Sequence[float] | None) -> list[Json]:
    """A band as two table cells, its low and high end (numbers in the figure's unit, so that the CSV holds them
    plain); "—" for a figure without a band."""
    if not band:
        return [cell(lang, "text", "—"), cell(lang, "text", "—")]
    return [cell(lang, kind, v) for v in _outward(kind, band)]


def _band(report: Report, key: str) -> tuple[list[float] | None, str | None]:
    """The report's band and basis of ``key`` (``uncertainty``, analytics.bands), or None where it has none."""
    unc = report.get("uncertainty")
    if not isinstance(unc, Mapping):
        return None, None
    bands, basis = unc.get("bands") or {}, unc.get("basis") or {}
    b = bands.get(key)
    return (None if b is None else [float(x) for x in b]), basis.get(key)


def kpis(lang: str, current: Report, previous: Report, keys: Sequence[tuple[str, str]] = KPIS) -> list[Json]:
    """The cards: each figure against last week's, with its calibrated band and basis where the report gives one
    (``band_text`` "likely 85–148"; "" for a figure without a band)."""
    out = []
    for key, kind in keys:
        cur, prev = _num(current, key), _num(previous, key)
        band, basis = _band(current, key)
        shown = band_text(lang, kind, band)
        out.append({"key": key, "kind": kind, "label": t(lang, key), "value": cur, "text": fmt(lang, kind, cur),
                    "unit": UNITS[kind],
                    "previous": prev, "previous_text": fmt(lang, kind, prev),
                    "change_text": i18n.change(cur, prev, ratio=kind == "ratio"),
                    "band": band, "basis": basis, "band_text": t(lang, "band", range=shown) if shown else ""})
    return out


def _summary(lang: str, cards: list[Json]) -> Json:
    """The cards as a table; the last two columns the calibrated band's ends ("—" for a figure without a band)."""
    rows = [[cell(lang, "text", k["label"]), {"text": k["text"], "value": k["value"], "unit": k["unit"]},
             {"text": k["previous_text"], "value": k["previous"], "unit": k["unit"]},
             cell(lang, "text", k["change_text"]), *band_cells(lang, k["kind"], k["band"])]
            for k in cards]
    return table("summary", t(lang, "summary"), [t(lang, "metric"), t(lang, "this_period"), t(lang, "last_week"),
                                                  t(lang, "change"), t(lang, "band_low"), t(lang, "band_high")], rows)


def _opt(value: Any) -> float | None:
    """A figure as a number, or None where the report has no data (never 0 in its place)."""
    return None if value is None else float(value)


def funnel(lang: str, report: Report) -> list[Json]:
    """passer-by → visitor → Wi-Fi login → member; each step with its share of the step before. The sensor's steps
    are None without its data; the portal's are always numbers."""
    visitors, passersby = _opt(report.get("visitors")), _opt(report.get("passersby"))
    heard = None if visitors is None or passersby is None else visitors + passersby
    steps = [("heard", heard), ("visitors", visitors),
             ("wifi_logins", int(report.get("wifi_logins") or 0)), ("new_members", int(report.get("new_members") or 0))]
    out = []
    for i, (key, n) in enumerate(steps):
        before = steps[i - 1][1] if i else None
        share = None if before is None or n is None else (n / before if before else None)
        out.append({"key": key, "label": t(lang, key), "value": n, "share": share})
    return out


def _buckets(mapping: Any) -> list[tuple[str, float | None]]:
    if isinstance(mapping, Mapping):
        return [(str(k), _opt(v)) for k, v in mapping.items()]
    return []


def _hourly(report: Report, key: str) -> list[float | None]:
    """24 hourly counts; None for an hour without data (not heard yet, or no sensor)."""
    values = report.get(key) or []
    return [_opt(v) for v in values][:24] + [None] * max(0, 24 - len(values))


def store_view(lang: str, store: Mapping[str, Any], start: date, end: date, current: Report,
               previous: Report, until: float | None = None, now: float | None = None) -> Json:
    cards = kpis(lang, current, previous)
    steps = funnel(lang, current)
    dwell_now, dwell_prev = _buckets(current.get("dwell_buckets")), dict(_buckets(previous.get("dwell_buckets")))
    loyal_now, loyal_prev = _buckets(current.get("loyalty_buckets")), dict(_buckets(previous.get("loyalty_buckets")))
    hv, hp, hl = _hourly(current, "hourly_visitors"), _hourly(current, "hourly_passersby"), _hourly(
        previous, "hourly_visitors")
    hc = _hourly(current, "hourly_connected")  # present per hour (not arrivals): its own column and line
    days = [d for d in current.get("days") or [] if isinstance(d, Mapping)]
    hourly_title = t(lang, "hourly") + ("" if start == end else t(lang, "summed"))
    tables = [
        _summary(lang, cards),
        table("funnel", t(lang, "funnel"), [t(lang, "step"), t(lang, "count"), t(lang, "conversion")],
              [[cell(lang, "text", s["label"]), cell(lang, "int", s["value"]), cell(lang, "ratio", s["share"])]
               for s in steps]),
        table("dwell", t(lang, "dwell"), [t(lang, "bucket"), t(lang, "this_period"), t(lang, "last_week")],
              [[cell(lang, "text", label), cell(lang, "int", n), cell(lang, "int", dwell_prev.get(label))]
               for label, n in dwell_now]),
        table("loyalty", t(lang, "loyalty"), [t(lang, "bucket"), t(lang, "this_period"), t(lang, "last_week")],
              [[cell(lang, "text", t(lang, label)), cell(lang, "int", n), cell(lang, "int", loyal_prev.get(label))]
               for label, n in loyal_now]),
        table("hourly", hourly_title, [t(lang, "hour"), t(lang, "visitors"), t(lang, "passersby"),
                                            t(lang, "visitors_last_week"), t(lang, "connected_present")],
              [[cell(lang, "text", f"{h:02d}:00"), cell(lang, "int", hv[h]), cell(lang, "int", hp[h]),
                cell(lang, "int", hl[h]), cell(lang, "int", hc[h])] for h in range(24)]),
    ]
    if len(days) > 1:
        cols = [("passersby", "int"), ("visitors", "int"), ("capture_rate", "ratio"), ("median_dwell_s", "duration"),
                ("wifi_logins", "int"), ("new_members", "int")]
        tables.append(table("days", t(lang, "days"), [t(lang, "date")] + [t(lang, k) for k, _ in cols],
                            [[cell(lang, "text", plain(d.get("date")))] + [cell(lang, kind, d.get(k)) for k, kind in cols]
                             for d in days]))
    return {
        "kind": "store",
        "title": str(store.get("name") or store["id"]),
        "store": dict(store),
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        **_compared(lang, start, end, until, str(store.get("timezone") or "UTC")),
        "kpis": cards,
        "connected": connected_view(lang, current, previous, now),
        "charts": {
            "hourly": {"title": hourly_title, "hours": [f"{h:02d}" for h in range(24)], "visitors": hv, "passersby": hp,
                       "visitors_last_week": hl, "connected": hc},
            "dwell": {"labels": [b for b, _ in dwell_now], "current": [n for _, n in dwell_now],
                      "previous": [dwell_prev.get(b) for b, _ in dwell_now]},
            "loyalty": {"labels": [t(lang, b) for b, _ in loyal_now], "values": [n for _, n in loyal_now]},
            "funnel": [{"name": s["label"], "value": s["value"]} for s in steps],
            "days": {"dates": [plain(d.get("date")) for d in days],
                     "visitors": [_opt(d.get("visitors")) for d in days],
                     "passersby": [_opt(d.get("passersby")) for d in days]},
        },
        "tables": tables,
        "report": {"current": plain(current), "previous": plain(previous)},
    }


def connected_view(lang: str, current: Report, previous: Report, now: float | None = None) -> Json | None:
    """The connected shoppers (``analytics.report``'s ``connected`` block: the AP's own stations, exact, basis
    ``connected_stations``) as a card beside the estimated figures; None when the report has no such block.
    ``health_text``: how much of the opening hours the AP's station list was read in, when not all (the figure is
    then a lower bound), and how long ago it was last read (``now``: the clock)."""
    cur, prev = current.get("connected"), previous.get("connected")
    if not isinstance(cur, Mapping):
        return None
    prev = prev if isinstance(prev, Mapping) else {}
    n, p = _opt(cur.get("visitors")), _opt(prev.get("visitors"))
    detail = (t(lang, "connected_none") if n is None else
              t(lang, "connected_detail", dwell=i18n.duration(lang, _opt(cur.get("median_dwell_s"))),
                visits=i18n.integer(_opt(cur.get("visits")))))
    share, last = _opt(cur.get("coverage")), _opt(cur.get("last_poll"))
    health = [t(lang, "connected_coverage", share=i18n.percent(share))] if (
        share is not None and share < 1) else []
    if last is not None and now is not None:
        health.append(t(lang, "connected_heard", age=i18n.duration(lang, max(0.0, now - last))))
    return {**plain(cur), "key": "connected", "label": t(lang, "connected"), "value": n, "text": fmt(lang, "int", n),
            "detail": detail, "previous": p, "previous_text": fmt(lang, "int", p),
            "change_text": i18n.change(n, p), "health_text": " · ".join(health)}


def _ident(item: Mapping[str, Any], kind: str) -> str:
    return str(item.get("id") or item.get(kind) or item.get(f"{kind}_id") or "")


def _side_by_side(lang: str, tid: str, title: str, kind: str, items: Sequence[Mapping[str, Any]],
                  previous: Sequence[Mapping[str, Any]], names: Mapping[str, str],
                  columns: Sequence[tuple[str, str]] = MALL_COLUMNS) -> Json:
    prev = {_ident(p, kind): p for p in previous}
    cols = [t(lang, kind)] + [t(lang, k) for k, _ in columns] + [
        t(lang, "visitors_low"), t(lang, "visitors_high"), t(lang, "connected_column"), t(lang, "visitors_last_week"),
        t(lang, "change")]
    rows = []
    for it in items:
        ident = _ident(it, kind)
        p = prev.get(ident, {})
        name = str(it.get("name") or names.get(ident) or ident)
        band = _band(it, "visitors")[0]
        conn = it.get("connected")
        rows.append([{"text": name, "value": name, "id": ident}]
                    + [cell(lang, k_kind, it.get(k)) for k, k_kind in columns]
                    # the visitors' band (no data without one); connected: exact, never added to the counts
                    + [cell(lang, "int", v) for v in (_outward("int", band) if band else (None, None))]
                    + [_connected_cell(lang, conn if isinstance(conn, Mapping) else {}),
                       cell(lang, "int", p.get("visitors")),
                       cell(lang, "text", i18n.change(_num(it, "visitors"), _num(p, "visitors")))])
    return table(tid, title, cols, rows, sortable=True)


def _connected_cell(lang: str, conn: Mapping[str, Any]) -> Json:
    """A row's connected shoppers; where the AP's station list was read in only part of the opening hours, "at
    least" and how much (a dead AP's store must not read as nobody connected), as the card's health text says."""
    out = cell(lang, "int", conn.get("visitors"))
    share = _opt(conn.get("coverage"))
    if out["value"] is not None and share is not None and share < 1:
        out["text"] = t(lang, "connected_partial", n=out["text"], share=i18n.percent(share))
        out["coverage"] = share
    return out


def mall_view(lang: str, mall: Mapping[str, Any], start: date, end: date, current: Report, previous: Report,
              store_names: Mapping[str, str], last_reports: Mapping[str, float | None] | None = None,
              now: float | None = None, until: float | None = None, tz: str = "UTC") -> Json:
    stores = [s for s in current.get("stores") or [] if isinstance(s, Mapping)]
    prev_stores = [s for s in previous.get("stores") or [] if isinstance(s, Mapping)]
    totals, prev_totals = current.get("totals") or {}, previous.get("totals") or {}
    cards = kpis(lang, totals, prev_totals, MALL_TOTALS)
    side = _side_by_side(lang, "stores", t(lang, "stores"), "store", stores, prev_stores, store_names)
    if last_reports is not None:
        side["columns"].append(t(lang, "last_report"))
        for row in side["rows"]:
            last = last_reports.get(row[0]["id"])
            age = None if last is None or now is None else max(0.0, now - last)
            row.append(cell(lang, "text", t(lang, "never") if age is None else t(lang, "ago",
                                                                                  age=i18n.duration(lang, age))))
    transitions = sorted((tr for tr in current.get("transitions") or [] if isinstance(tr, Mapping)),
                         key=lambda tr: (-int(tr.get("count") or 0), str(tr.get("from")), str(tr.get("to"))))
    top = transitions[:TOP_TRANSITIONS]

    def name(sid: Any) -> str:
        return store_names.get(str(sid), str(sid))

    prev_by = {_ident(p, "store"): p for p in prev_stores}
    multiples = [{"id": _ident(s, "store"), "name": str(s.get("name") or name(_ident(s, "store"))),
                  "labels": [t(lang, "passersby"), t(lang, "visitors"), t(lang, "wifi_logins"),
                             t(lang, "new_members")],
                  "current": [_opt(s.get(k)) for k in ("passersby", "visitors", "wifi_logins", "new_members")],
                  "previous": [_opt(prev_by.get(_ident(s, "store"), {}).get(k))
                               for k in ("passersby", "visitors", "wifi_logins", "new_members")]}
                 for s in stores]
    return {
        "kind": "mall",
        "title": str(mall.get("name") or mall["id"]),
        "mall": dict(mall),
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        **_compared(lang, start, end, until, tz),
        "kpis": cards,
        "connected": connected_view(lang, totals, prev_totals, now),
        "charts": {"multiples": multiples,
                   "transitions": [{"from": name(tr.get("from")), "to": name(tr.get("to")),
                                    "count": int(tr.get("count") or 0)} for tr in top]},
        "tables": [
            _summary(lang, cards) | {"id": "totals", "title": t(lang, "mall_totals")},
            side,
            table("transitions", t(lang, "transitions"), [t(lang, "from_store"), t(lang, "to_store"),
                                                          t(lang, "shoppers")],
                  [[cell(lang, "text", name(tr.get("from"))), cell(lang, "text", name(tr.get("to"))),
                    cell(lang, "int", tr.get("count"))] for tr in top]),
        ],
        "report": {"current": plain(current), "previous": plain(previous)},
    }


def _flat_mall(m: Mapping[str, Any]) -> dict[str, Any]:
    """An operator report's mall (``mall_range`` shape: figures under ``totals``) as one flat row."""
    totals = m.get("totals")
    return {**totals, "id": m.get("id"), "name": m.get("name")} if isinstance(totals, Mapping) else dict(m)


def operator_view(lang: str, start: date, end: date, current: Report, previous: Report,
                  mall_names: Mapping[str, str], until: float | None = None, tz: str = "UTC",
                  now: float | None = None) -> Json:
    malls = [_flat_mall(m) for m in current.get("malls") or [] if isinstance(m, Mapping)]
    prev = [_flat_mall(m) for m in previous.get("malls") or [] if isinstance(m, Mapping)]
    side = _side_by_side(lang, "malls", t(lang, "malls"), "mall", malls, prev, mall_names, MALL_TOTALS)
    totals, prev_totals = current.get("totals"), previous.get("totals")
    totals = totals if isinstance(totals, Mapping) else {}
    prev_totals = prev_totals if isinstance(prev_totals, Mapping) else {}
    # the operator's totals (sums of the malls') as cards with their bands, and as a table for the CSV
    cards = kpis(lang, totals, prev_totals, MALL_TOTALS) if totals else []
    return {
        "kind": "operator",
        "title": t(lang, "operator_view"),
        "range": {"start": start.isoformat(), "end": end.isoformat()},
        **_compared(lang, start, end, until, tz),
        "kpis": cards,
        "connected": connected_view(lang, totals, prev_totals, now),
        "charts": {"malls": {"names": [r[0]["text"] for r in side["rows"]],
                             "visitors": [_opt(m.get("visitors")) for m in malls],
                             "passersby": [_opt(m.get("passersby")) for m in malls]}},
        "tables": [side] + ([_summary(lang, cards) | {"id": "totals", "title": t(lang, "operator_totals")}]
                            if cards else []),
        "report": {"current": plain(current), "previous": plain(previous)},
    }


def status(lang: str, last_report: float | None, now: float, current: Report) -> Json:
    """The empty state and the sensor's freshness: never reported, no data in range, or last seen N ago."""
    age = None if last_report is None else max(0.0, now - last_report)
    has_data = bool((current.get("visitors") or 0) or (current.get("passersby") or 0))
    if age is None:
        message = t(lang, "empty_never")
    elif not has_data:
        message = t(lang, "empty_range", age=i18n.duration(lang, age))
    else:
        message = t(lang, "stale", age=i18n.duration(lang, age))
    return {"last_report": last_report, "age_s": age, "empty": not has_data, "never": last_report is None,
            "message": message}


def live_view(lang: str, kind: str, live: Report, min_dwell_s: float, names: Mapping[str, str] | None = None) -> Json:
    """Live occupancy (``analytics.report.store_live`` / ``mall_live``) with its texts: the figure, its band, the
    detail line and the sensor's freshness; a mall's stores each with their own figure."""
    n = live.get("occupancy")
    lo, hi = (live.get("band") or [None, None])[:2]
    minutes = f"{int(live.get('window_s') or 0) / 60:g}"
    age = live.get("last_sighting_age_s")
    heard = (t(lang, "live_heard", age=i18n.duration(lang, float(age)))
             if age is not None and age <= float(live.get("window_s") or 0) else t(lang, "live_silent", minutes=minutes))
    out: Json = {
        **plain(live), "kind": kind, "label": t(lang, "live_mall" if kind == "mall" else "live_store"),
        "text": i18n.integer(n), "band_text": "" if lo is None or hi is None else t(
            lang, "live_band", lo=i18n.integer(math.floor(lo)), hi=i18n.integer(math.ceil(hi))),
        "detail": t(lang, "live_detail", minutes=minutes, dwell=i18n.duration(lang, min_dwell_s),
                    staying=i18n.integer(live.get("staying")), nearby=i18n.integer(live.get("nearby"))),
        "heard": heard,
        "connected_text": t(lang, "live_connected", n=i18n.integer(live.get("connected") or 0)),
    }
    if kind == "mall":
        out["stores"] = [{"id": s["store"], "name": (names or {}).get(s["store"], s["store"]),
                          "value": s.get("occupancy"), "text": i18n.integer(s.get("occupancy"))}
                         for s in live.get("stores") or []]
    return out
