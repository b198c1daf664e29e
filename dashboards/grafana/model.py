"""Small builders of Grafana dashboard JSON (pure): panels, InfluxQL targets, template variables, layout.

Plain functions returning plain dicts, in the shape Grafana 10/11 stores (``schemaVersion`` 39). Nothing here knows
about keliu's metrics; :mod:`dashboards.grafana.boards` uses these to declare the keliu dashboards. Panel ids and
grid positions are assigned by :func:`dashboard` in declaration order, so the output is deterministic and a
regenerated file only changes where the declaration changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 39
GRID_WIDTH = 24

Json = dict[str, Any]


@dataclass(frozen=True)
class Query:
    """One InfluxQL query of a panel. ``alias`` names the series in the legend (Grafana's $tag_x patterns)."""

    text: str
    ref: str = "A"
    alias: str = ""
    table: bool = False


@dataclass(frozen=True)
class Panel:
    """A panel before layout: ``width``/``height`` in grid units; ids and positions come from the dashboard."""

    kind: str  # stat | timeseries | barchart | table | bargauge | text
    title: str
    queries: tuple[Query, ...] = ()
    width: int = 6
    height: int = 6
    unit: str = ""
    description: str = ""
    options: Json = field(default_factory=dict)
    overrides: tuple[Json, ...] = ()
    decimals: int | None = None
    transformations: tuple[Json, ...] = ()


def datasource(uid: str) -> Json:
    return {"type": "influxdb", "uid": uid}


def target(q: Query, ds: Json) -> Json:
    return {
        "datasource": ds,
        "query": q.text,
        "rawQuery": True,
        "refId": q.ref,
        "resultFormat": "table" if q.table else "time_series",
        "alias": q.alias,
    }


def query_variable(name: str, label: str, query: str, ds: Json, *, include_all: bool = False) -> Json:
    """A template variable filled by an InfluxQL query, refreshed when the time range or a parent changes."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": ds,
        "query": query,
        "definition": query,
        "refresh": 2,  # on time range change, so a new store appears without editing the dashboard
        "sort": 1,
        "multi": False,
        "includeAll": include_all,
        "current": {},
        "options": [],
        "hide": 0,
        "regex": "",
    }


def constant_variable(name: str, label: str, value: str) -> Json:
    """A text box variable with a default, e.g. the time zone that day boundaries follow."""
    return {
        "name": name,
        "label": label,
        "type": "textbox",
        "query": value,
        "current": {"text": value, "value": value},
        "options": [{"selected": True, "text": value, "value": value}],
        "hide": 0,
    }


def _panel_json(p: Panel, pid: int, x: int, y: int, ds: Json) -> Json:
    defaults: Json = {"unit": p.unit} if p.unit else {}
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    out: Json = {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": ds,
        "gridPos": {"x": x, "y": y, "w": p.width, "h": p.height},
        "targets": [target(q, ds) for q in p.queries],
        "fieldConfig": {"defaults": defaults, "overrides": list(p.overrides)},
        "options": p.options,
    }
    if p.transformations:
        out["transformations"] = list(p.transformations)
    return out


def layout(panels: list[Panel], ds: Json) -> list[Json]:
    """Flow panels left to right into rows of :data:`GRID_WIDTH`; ids count from 1 in order."""
    out: list[Json] = []
    x = y = row_height = 0
    for pid, p in enumerate(panels, start=1):
        if x + p.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        out.append(_panel_json(p, pid, x, y, ds))
        x += p.width
        row_height = max(row_height, p.height)
    return out


def dashboard(uid: str, title: str, panels: list[Panel], variables: list[Json], ds: Json, *,
              tags: list[str], time_from: str = "now-7d", description: str = "") -> Json:
    """A whole dashboard. ``id`` is null and ``version`` 1 so that file provisioning and the HTTP API accept it."""
    if len(uid) > 40:
        raise ValueError(f"Grafana uids have at most 40 characters: {uid!r}")
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "5m",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": layout(panels, ds),
    }


def stat_options(reduce: str = "sum") -> Json:
    return {
        "reduceOptions": {"calcs": [reduce], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "justifyMode": "auto",
        "textMode": "value",
    }
