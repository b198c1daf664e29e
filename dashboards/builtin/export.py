"""CSV export of a dashboard view (pure): exactly the tables the page shows, with the same texts.

One block per table: its title, its column names, its rows, then an empty line. The file starts with a UTF-8 byte
order mark so that Excel on Chinese Windows opens 中文 names correctly.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any


def to_csv(view: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([view["title"], f"{view['range']['start']} – {view['range']['end']}"])
    w.writerow([view["compare_note"]])
    w.writerow([])
    for tab in view["tables"]:
        w.writerow([tab["title"]])
        w.writerow(tab["columns"])
        for row in tab["rows"]:
            w.writerow([c["text"] for c in row])
        w.writerow([])
    return "\ufeff" + buf.getvalue()


def filename(view: Mapping[str, Any]) -> str:
    """An ASCII file name: kind, id and range (ids are slugs, see keliu.config.slug)."""
    ident = {"store": lambda: view["store"]["id"], "mall": lambda: view["mall"]["id"]}.get(view["kind"],
                                                                                          lambda: "all")()
    return f"keliu-{view['kind']}-{ident}-{view['range']['start']}-{view['range']['end']}.csv"
