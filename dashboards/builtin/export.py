"""CSV export of a dashboard view (pure): exactly the tables the page shows, as plain numbers.

One block per table: its title, its column names, its rows, then an empty line. A number is written plain, in its
unit (counts, seconds, ratios from 0 to 1; no thousands separator, no "%", no "分钟"), and the unit is named in the
column's header — or, in a table whose rows are different metrics (the summary), after the row's name. A cell without
data is empty. Text cells (names, dates, changes) are written as the page shows them. The file starts with a UTF-8
byte order mark so that Excel on Chinese Windows opens 中文 names correctly.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

UNIT_TEXT = {
    "zh-CN": {"count": "个", "ratio": "比例 0–1", "s": "秒"},
    "en": {"count": "count", "ratio": "ratio 0–1", "s": "seconds"},
}


def number(value: Any) -> str:
    """A plain number: integers without a decimal point, others with up to 6 decimals; empty without data."""
    if value is None:
        return ""
    v = float(value)
    return str(int(v)) if v.is_integer() else f"{v:.6f}".rstrip("0").rstrip(".")


def _column_units(rows: Sequence[Sequence[Mapping[str, Any]]], width: int) -> list[set[str]]:
    units: list[set[str]] = [set() for _ in range(width)]
    for row in rows:
        for j, c in enumerate(row[:width]):
            if c.get("unit"):
                units[j].add(str(c["unit"]))
    return units


def to_csv(view: Mapping[str, Any], lang: str = "zh-CN") -> str:
    names = UNIT_TEXT.get(lang, UNIT_TEXT["en"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([view["title"], f"{view['range']['start']} – {view['range']['end']}"])
    w.writerow([view["compare_note"]])
    w.writerow([])
    for tab in view["tables"]:
        columns, rows = list(tab["columns"]), tab["rows"]
        units = _column_units(rows, len(columns))
        w.writerow([tab["title"]])
        w.writerow([f"{col} ({names[next(iter(u))]})" if len(u) == 1 else col for col, u in zip(columns, units)])
        for row in rows:
            out = []
            for j, c in enumerate(row):
                if "unit" in c:
                    out.append(number(c["value"]))
                elif j == 0 and any(len(u) > 1 for u in units):
                    # a row of its own metric: its unit after its name
                    unit = next((str(x["unit"]) for x in row if x.get("unit")), None)
                    out.append(f"{c['text']} ({names[unit]})" if unit else str(c["text"]))
                else:
                    out.append(str(c["text"]))
            w.writerow(out)
        w.writerow([])
    return "\ufeff" + buf.getvalue()


def filename(view: Mapping[str, Any]) -> str:
    """An ASCII file name: kind, id and range (ids are slugs, see keliu.config.slug)."""
    ident = {"store": lambda: view["store"]["id"], "mall": lambda: view["mall"]["id"]}.get(view["kind"],
                                                                                          lambda: "all")()
    return f"keliu-{view['kind']}-{ident}-{view['range']['start']}-{view['range']['end']}.csv"
