"""The keliu Grafana dashboards, declared as code (pure): store, mall and fleet, over InfluxQL.

They read the line protocol of docs/CONTRACTS.md ("Analytics → InfluxDB → Grafana"): measurement ``traffic`` tagged
``mall``, ``store``, ``period`` (``5m``/``1h``/``1d``, timestamp = period start) and ``sensor_health`` tagged ``mall``,
``store``, ``sensor``. Only InfluxQL is used, so the same JSON works on InfluxDB 1.x, 2.x (DBRP mapping) and 3.x.

Ratios over a range are ratios of sums (capture rate = ``sum(visitors) / (sum(visitors) + sum(passersby))``, as
docs/METRICS.md defines it), never means of daily ratios. A median dwell cannot be combined across days, so it is
shown per day only. Mall and fleet totals are sums over stores: a
shopper who visits two stores counts twice there (the built-in dashboard shows de-duplicated mall totals).

Variables chain ``$mall`` → ``$store``; ``$tz`` is the time zone whose midnight starts a day when daily points of
several stores are added up. :func:`for_mall` pins ``$mall`` for the per-mall folders that ``provision`` creates.
"""
from __future__ import annotations

import copy
import hashlib

from dashboards.config import DashboardsConfig
from dashboards.grafana.model import (
    Json,
    Panel,
    Query,
    constant_variable,
    dashboard,
    datasource,
    query_variable,
    stat_options,
)

MALL = '"mall" =~ /^$mall$/'
STORE = '"store" =~ /^$store$/'
DAILY = "\"period\" = '1d'"
HOURLY = "\"period\" = '1h'"
TIME = "$timeFilter"
CAPTURE = 'sum("visitors") / (sum("visitors") + sum("passersby"))'

DWELL_FIELDS: tuple[tuple[str, str], ...] = (
    ("dwell_lt5m", "<5m"),
    ("dwell_5_20m", "5-20m"),
    ("dwell_20_60m", "20-60m"),
    ("dwell_1_6h", "1-6h"),
    ("dwell_gt6h", ">6h"),
)

UID_STORE = "keliu-store"
UID_MALL = "keliu-mall"
UID_FLEET = "keliu-fleet"


def _where(*conds: str) -> str:
    return " AND ".join(conds)


def _sum_stat(title: str, field: str, where: str, *, unit: str = "short", description: str = "") -> Panel:
    return Panel("stat", title, (Query(f'SELECT sum("{field}") FROM "traffic" WHERE {where}'),),
                 width=4, height=4, unit=unit, options=stat_options(), description=description, decimals=0)


def _ratio_stat(title: str, where: str) -> Panel:
    q = Query(f'SELECT {CAPTURE} FROM "traffic" WHERE {where}')
    return Panel("stat", title, (q,), width=4, height=4, unit="percentunit", options=stat_options("lastNotNull"),
                 description="visitors / (visitors + passers-by) over the whole range (a ratio of sums; docs/METRICS.md)", decimals=1)


def _variables(ds: Json, tz: str, *, store: bool) -> list[Json]:
    out = [query_variable("mall", "Mall", 'SHOW TAG VALUES WITH KEY = "mall"', ds)]
    if store:
        out.append(query_variable("store", "Store", 'SHOW TAG VALUES WITH KEY = "store" WHERE "mall" =~ /^$mall$/', ds))
    out.append(constant_variable("tz", "Day boundary time zone", tz))
    return out


def store_board(cfg: DashboardsConfig, tz: str = "Asia/Shanghai") -> Json:
    ds = datasource(cfg.datasource_uid)
    day = _where(MALL, STORE, DAILY, TIME)
    hour = _where(MALL, STORE, HOURLY, TIME)
    dwell_q = ", ".join(f'sum("{f}") AS "{label}"' for f, label in DWELL_FIELDS)
    panels = [
        _sum_stat("Passers-by", "passersby", day),
        _sum_stat("Visitors", "visitors", day),
        _ratio_stat("Capture rate", day),
        Panel("stat", "Median dwell (latest day)",
              (Query(f'SELECT last("median_dwell_s") FROM "traffic" WHERE {day}'),), width=4, height=4, unit="s",
              options=stat_options("lastNotNull"), decimals=0,
              description="a median cannot be added across days; the daily series is below"),
        _sum_stat("Wi-Fi logins", "wifi_logins", day),
        _sum_stat("New members", "new_members", day),
        Panel("timeseries", "Hourly traffic",
              (Query(f'SELECT "passersby" AS "passers-by", "visitors" AS "visitors" FROM "traffic" WHERE {hour}'),),
              width=16, height=8, unit="short", options={"legend": {"displayMode": "list", "placement": "bottom"}}),
        Panel("barchart", "Dwell time", (Query(f'SELECT {dwell_q} FROM "traffic" WHERE {day}', table=True),),
              width=8, height=8, unit="short", options={"orientation": "horizontal", "xField": "Time"},
              transformations=({"id": "reduce", "options": {"reducers": ["sum"]}},)),
        Panel("timeseries", "New vs repeat visitors (daily)",
              (Query(f'SELECT "new_visitors" AS "new", "repeat_visitors" AS "repeat" FROM "traffic" WHERE {day}'),),
              width=8, height=8, unit="short", options={"legend": {"displayMode": "list", "placement": "bottom"}}),
        Panel("timeseries", "Median dwell (daily)",
              (Query(f'SELECT "median_dwell_s" AS "median dwell" FROM "traffic" WHERE {day}'),),
              width=8, height=8, unit="s"),
        Panel("timeseries", "Funnel (daily): visitors → Wi-Fi logins → new members",
              (Query(f'SELECT "visitors", "wifi_logins" AS "Wi-Fi logins", "new_members" AS "new members" '
                     f'FROM "traffic" WHERE {day}'),), width=8, height=8, unit="short"),
        Panel("table", "Sensors",
              (Query('SELECT last("fps") AS "frames/s", last("last_frame_age_s") AS "last frame age", '
                     'sum("drops") AS "drops" FROM "sensor_health" WHERE '
                     + _where(MALL, STORE, TIME) + ' GROUP BY "sensor"', table=True),),
              width=24, height=5, description="a sensor whose last frame is old has stopped reporting"),
    ]
    return dashboard(UID_STORE, "keliu · Store", panels, _variables(ds, tz, store=True), ds,
                     tags=["keliu", "store"], description="One store's foot traffic against its sensors' health.")


def mall_board(cfg: DashboardsConfig, tz: str = "Asia/Shanghai") -> Json:
    ds = datasource(cfg.datasource_uid)
    day = _where(MALL, DAILY, TIME)
    panels = [
        _sum_stat("Passers-by (sum of stores)", "passersby", day),
        _sum_stat("Visitors (sum of stores)", "visitors", day,
                  description="a shopper who visits two stores counts twice"),
        _ratio_stat("Capture rate", day),
        _sum_stat("Wi-Fi logins", "wifi_logins", day),
        _sum_stat("New members", "new_members", day),
        _sum_stat("New visitors", "new_visitors", day),
        Panel("table", "Stores side by side",
              (Query('SELECT sum("passersby") AS "passers-by", sum("visitors") AS "visitors", '
                     f'{CAPTURE} AS "capture rate", sum("wifi_logins") AS "Wi-Fi logins", '
                     f'sum("new_members") AS "new members" FROM "traffic" WHERE {day} GROUP BY "store"',
                     table=True),),
              width=24, height=8, options={"sortBy": [{"displayName": "visitors", "desc": True}]},
              overrides=({"matcher": {"id": "byName", "options": "capture rate"},
                          "properties": [{"id": "unit", "value": "percentunit"}]},)),
        Panel("timeseries", "Visitors by store (daily)",
              (Query(f'SELECT "visitors" FROM "traffic" WHERE {day} GROUP BY "store"', alias="$tag_store"),),
              width=12, height=8, unit="short"),
        Panel("timeseries", "Capture rate by store (daily)",
              (Query(f'SELECT "capture_rate" FROM "traffic" WHERE {day} GROUP BY "store"', alias="$tag_store"),),
              width=12, height=8, unit="percentunit"),
    ]
    return dashboard(UID_MALL, "keliu · Mall", panels, _variables(ds, tz, store=False), ds,
                     tags=["keliu", "mall"], description="The stores of one mall side by side.")


def fleet_board(cfg: DashboardsConfig, tz: str = "Asia/Shanghai") -> Json:
    ds = datasource(cfg.datasource_uid)
    day = _where(DAILY, TIME)
    panels = [
        Panel("table", "Malls side by side",
              (Query('SELECT sum("passersby") AS "passers-by", sum("visitors") AS "visitors", '
                     f'{CAPTURE} AS "capture rate", sum("wifi_logins") AS "Wi-Fi logins", '
                     f'sum("new_members") AS "new members" FROM "traffic" WHERE {day} GROUP BY "mall"',
                     table=True),),
              width=24, height=8, options={"sortBy": [{"displayName": "visitors", "desc": True}]},
              overrides=({"matcher": {"id": "byName", "options": "capture rate"},
                          "properties": [{"id": "unit", "value": "percentunit"}]},)),
        Panel("timeseries", "Visitors by mall (daily, sum of stores)",
              (Query(f'SELECT sum("visitors") FROM "traffic" WHERE {day} '
                     "GROUP BY time(1d), \"mall\" fill(none) tz('$tz')", alias="$tag_mall"),),
              width=24, height=8, unit="short"),
        Panel("table", "Sensors not reporting for 15 minutes",
              (Query('SELECT last("last_frame_age_s") AS "last frame age" FROM "sensor_health" WHERE '
                     f'{TIME} GROUP BY "mall", "store", "sensor"', table=True),),
              width=24, height=6, unit="s",
              transformations=({"id": "filterByValue", "options": {
                  "filters": [{"fieldName": "last frame age",
                               "config": {"id": "greater", "options": {"value": 900}}}],
                  "type": "include", "match": "any"}},)),
    ]
    variables = [constant_variable("tz", "Day boundary time zone", tz)]
    return dashboard(UID_FLEET, "keliu · Fleet", panels, variables, ds, tags=["keliu", "fleet"],
                     time_from="now-30d", description="Every mall side by side.")


def boards(cfg: DashboardsConfig, tz: str = "Asia/Shanghai") -> dict[str, Json]:
    """The committed dashboards by file name (``dashboards/grafana/json/<name>``)."""
    return {
        "keliu-store.json": store_board(cfg, tz),
        "keliu-mall.json": mall_board(cfg, tz),
        "keliu-fleet.json": fleet_board(cfg, tz),
    }


def mall_uid(base: str, mall_id: str) -> str:
    """A stable uid of at most 40 characters for ``base`` pinned to one mall."""
    uid = f"{base}-{mall_id}"
    if len(uid) <= 40:
        return uid
    return f"{base}-{hashlib.sha1(mall_id.encode()).hexdigest()[:12]}"


def for_mall(board: Json, mall_id: str, mall_name: str) -> Json:
    """A copy of a store or mall dashboard pinned to one mall: ``$mall`` hidden and fixed, its own uid and title."""
    out = copy.deepcopy(board)
    out["uid"] = mall_uid(board["uid"], mall_id)
    out["title"] = f"{board['title']} · {mall_name or mall_id}"
    for var in out["templating"]["list"]:
        if var["name"] == "mall":
            var.clear()
            var.update(constant_variable("mall", "Mall", mall_id))
            var["type"] = "constant"
            var["hide"] = 2
    return out
