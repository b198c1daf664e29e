"""The dashboard's JSON/CSV API through the portal app: numbers, comparison week, tenancy, empty state, CSV."""
from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import pytest
from flask import Flask

from analytics.bands import band
from dashboards.builtin import OPENAPI_PATHS
from tests.dashboards.app import D1, D2, NOW, login, make_app
from tests.dashboards.fakereports import FakeReports


@pytest.fixture(scope="module")
def reports() -> FakeReports:
    return FakeReports()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, reports: FakeReports) -> Flask:
    # read-only requests only: one app (schema, password hashes) for the whole module
    return make_app(tmp_path_factory.mktemp("dash"), reports)


def kpi(view: dict, key: str) -> dict:  # type: ignore[type-arg]
    (k,) = [k for k in view["kpis"] if k["key"] == key]
    return k


def test_store_view_numbers_and_comparison_week(app: Flask, reports: FakeReports) -> None:
    c = login(app, "boss-s1")
    r = c.get(f"/api/v1/stores/s1/dashboard?start={D1}&end={D2}&lang=en")
    assert r.status_code == 200
    v = r.json
    assert v["title"] == "星巴克"
    assert v["range"] == {"start": "2026-11-17", "end": "2026-11-18"}
    # the range ends today (the clock: 18:00 on D2), so last week's figures stop at 18:00 on its last day
    assert v["previous_range"] == {"start": "2026-11-10", "end": "2026-11-11", "until": "18:00"}
    assert v["compare_note"] == ("compared with the same weekdays one week earlier (2026-11-10 – 2026-11-11), up to"
                                 " 18:00 on 2026-11-11 (the same time as now: today is not over)")
    assert reports.untils[-2:] == [("store_range", None), ("store_range", NOW - 7 * 86400)]
    assert ("store_range", "s1", D1, D2) in reports.calls
    assert ("store_range", "s1", D1 - timedelta(days=7), D2 - timedelta(days=7)) in reports.calls
    assert [(k["key"], k["text"], k["previous_text"]) for k in v["kpis"]] == [
        ("passersby", "500", "0"), ("visitors", "150", "0"), ("capture_rate", "23.1%", "0.0%"),
        ("median_dwell_s", "15 min", "—"), ("new_visitors", "90", "0"), ("repeat_visitors", "60", "0"),
        ("wifi_logins", "18", "0"), ("new_members", "7", "0")]
    funnel = {row[0]["text"]: (row[1]["text"], row[2]["text"]) for row in table(v, "funnel")["rows"]}
    assert funnel == {"Heard nearby (passers-by + visitors)": ("650", "—"), "Visitors": ("150", "23.1%"),
                      "Wi-Fi logins": ("18", "12.0%"), "New members": ("7", "38.9%")}
    dwell = [(r[0]["text"], r[1]["text"]) for r in table(v, "dwell")["rows"]]
    assert dwell == [("<5m", "0"), ("5-20m", "95"), ("20-60m", "40"), ("1-6h", "15"), (">6h", "0")]
    hourly = table(v, "hourly")["rows"]
    assert [(r[0]["text"], r[1]["text"], r[2]["text"]) for r in hourly if r[1]["value"]] == [
        ("10:00", "40", "100"), ("11:00", "60", "200"), ("12:00", "50", "200")]
    assert [r[0]["text"] for r in table(v, "days")["rows"]] == ["2026-11-17", "2026-11-18"]
    assert v["report"]["current"]["visitors"] == 150  # the analytics report itself, for API consumers
    assert v["status"]["empty"] is False and v["status"]["never"] is False


def table(view: dict, tid: str) -> dict:  # type: ignore[type-arg]
    (t,) = [t for t in view["tables"] if t["id"] == tid]
    return t


def test_default_range_is_today_in_the_store_time_zone(app: Flask, reports: FakeReports) -> None:
    v = login(app, "boss-s1").get("/api/v1/stores/s1/dashboard").json
    assert v["range"] == {"start": str(D2), "end": str(D2)}
    assert kpi(v, "visitors")["text"] == "50"
    assert "days" not in [t["id"] for t in v["tables"]]  # one day: no day-by-day table


def test_chinese_labels(app: Flask, reports: FakeReports) -> None:
    c = login(app, "boss-s1")
    v = c.get(f"/api/v1/stores/s1/dashboard?start={D1}", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).json
    assert kpi(v, "capture_rate")["label"] == "进店率"
    assert kpi(v, "median_dwell_s")["text"] == "15 分钟"
    assert v["compare_note"] == "对比上周同日（2026-11-10 – 2026-11-10）"  # D1 is over: whole days on both sides
    assert v["previous_range"]["until"] is None and reports.untils[-1] == ("store_range", None)
    assert c.get(f"/api/v1/stores/s1/dashboard?start={D1}&lang=en").json["kpis"][2]["label"] == "Capture rate"


# ---- tenancy: every denial by a direct API call ------------------------------------------------------------

ALL = ["/api/v1/stores/s1/dashboard", "/api/v1/stores/s2/dashboard", "/api/v1/stores/s3/dashboard",
       "/api/v1/stores/nope/dashboard", "/api/v1/malls/m1/dashboard", "/api/v1/malls/m2/dashboard",
       "/api/v1/operator/dashboard"]
ALLOWED = {
    "boss-s1": {"/api/v1/stores/s1/dashboard"},
    "boss-s3": {"/api/v1/stores/s3/dashboard"},
    "ops-m1": {"/api/v1/stores/s1/dashboard", "/api/v1/stores/s2/dashboard", "/api/v1/malls/m1/dashboard"},
}


@pytest.mark.parametrize("user", sorted(ALLOWED))
def test_tenancy_is_enforced_on_the_server(app: Flask, user: str) -> None:
    c = login(app, user)
    for url in ALL:
        for suffix in ("", ".csv"):
            r = c.get(url.replace("/dashboard", "/dashboard" + suffix) + f"?start={D1}")
            expected = 200 if url in ALLOWED[user] else 403
            assert (url + suffix, r.status_code) == (url + suffix, expected)
            if expected == 403:
                assert r.json["error"] == "forbidden"
                assert "visitors" not in r.get_data(as_text=True)


def test_admin_sees_everything_and_unknown_ids_are_404(app: Flask) -> None:
    c = login(app, "admin")
    for url in ALL:
        r = c.get(url + f"?start={D1}")
        assert (url, r.status_code) == (url, 404 if "nope" in url else 200)


def test_without_login_the_api_answers_401_json(app: Flask) -> None:
    r = app.test_client().get("/api/v1/stores/s1/dashboard")
    assert r.status_code == 401 and r.json["error"] == "login_required"
    r = app.test_client().get("/dashboard/store/s1")
    assert r.status_code == 302 and "/admin/login" in r.headers["Location"]


def test_store_manager_lands_on_their_store_and_cannot_open_another_page(app: Flask) -> None:
    c = login(app, "boss-s1")
    assert c.get("/dashboard?lang=en").headers["Location"] == "/dashboard/store/s1?lang=en"
    assert c.get("/dashboard/store/s1").status_code == 200
    r = c.get("/dashboard/store/s2?lang=en")
    assert r.status_code == 403 and "You may not see these numbers." in r.get_data(as_text=True)
    assert login(app, "ops-m1").get("/dashboard").headers["Location"] == "/dashboard/mall/m1"
    assert login(app, "admin").get("/dashboard").headers["Location"] == "/dashboard/operator"


def test_me_lists_only_what_the_user_may_open(app: Flask) -> None:
    me = login(app, "ops-m1").get("/api/v1/dashboard/me").json
    assert me["user"]["role"] == "mall" and me["operator"] is False
    assert [m["id"] for m in me["malls"]] == ["m1"]
    assert [s["id"] for s in me["stores"]] == ["s1", "s2"]


@pytest.mark.parametrize(("query", "message"), [
    ("start=2026-13-01", "expected YYYY-MM-DD"), (f"start={D2}&end={D1}", "before start"),
    ("start=2025-01-01&end=2026-11-18", "at most 366 days")])
def test_bad_dates_are_400(app: Flask, query: str, message: str) -> None:
    r = login(app, "boss-s1").get(f"/api/v1/stores/s1/dashboard?{query}")
    assert r.status_code == 400 and message in r.json["message"]


# ---- empty state -------------------------------------------------------------------------------------------


def test_empty_state_when_the_sensor_never_reported(app: Flask) -> None:
    v = login(app, "boss-s3").get(f"/api/v1/stores/s3/dashboard?start={D2}&lang=en").json
    assert v["status"] == {"last_report": None, "age_s": None, "empty": True, "never": True,
                           "message": "No data yet: the sensor of this store has not sent anything."}


def test_empty_state_says_how_long_ago_the_sensor_last_reported(app: Flask) -> None:
    v = login(app, "boss-s1").get("/api/v1/stores/s1/dashboard?start=2026-11-01&lang=en").json
    # last report 23:00 on D1, the clock says 18:00 on D2: 19 hours
    assert v["status"]["empty"] is True
    assert v["status"]["message"] == "No data for these dates. The sensor last reported 19 h ago."
    zh = login(app, "boss-s1").get("/api/v1/stores/s1/dashboard?start=2026-11-01&lang=zh-CN").json
    assert zh["status"]["message"] == "所选日期没有数据。探针最近一次上报在19 小时前。"


def ends(metric: str, value: float) -> list[str]:
    """A count's calibrated band (analytics.bands: recalibrating moves it) as shown, widened to whole numbers."""
    lo, hi = band(metric, value)
    return [str(math.floor(lo)), str(math.ceil(hi))]


def likely(metric: str, value: float) -> str:
    return "likely {}–{}".format(*ends(metric, value))


# ---- mall and operator -------------------------------------------------------------------------------------


def test_mall_view(app: Flask) -> None:
    v = login(app, "ops-m1").get(f"/api/v1/malls/m1/dashboard?start={D1}&lang=en").json
    assert v["title"] == "万达广场"
    assert [(k["key"], k["text"]) for k in v["kpis"]] == [
        ("passersby", "400"), ("visitors", "120"), ("capture_rate", "23.1%"), ("wifi_logins", "15"),
        ("new_members", "6")]
    stores = table(v, "stores")
    assert stores["sortable"] is True
    assert stores["columns"][:3] == ["Store", "Passers-by", "Visitors"]
    # the visitors' calibrated band (analytics.bands, widened to whole numbers) and, apart, the connected shoppers
    # (exact, never in the counts)
    assert stores["columns"][7:10] == ["Visitors, likely from", "Visitors, likely to", "Connected (exact)"]
    assert [[c["text"] for c in r] for r in stores["rows"]] == [
        ["星巴克", "300", "100", "25.0%", "15 min", "12", "5", *ends("visitors", 100), "6", "0", "—", "19 h ago"],
        ["优衣库", "100", "25", "20.0%", "7 min", "3", "1", *ends("visitors", 25), "3", "0", "—", "20 h ago"]]
    cards = {k["key"]: k for k in v["kpis"]}
    assert (cards["visitors"]["band_text"], cards["visitors"]["basis"]) == (likely("visitors", 120), "linked_devices")
    lo, hi = band("capture_rate", 120 / 520)
    assert cards["capture_rate"]["band_text"] == f"likely {lo:.1%}–{hi:.1%}" and cards["wifi_logins"]["band_text"] == ""
    # the mall's connected shoppers: 6 + 3, of whom 2 were connected at both stores, once
    assert (v["connected"]["value"], v["connected"]["text"], v["connected"]["basis"]) == (7, "7", "connected_stations")
    # the totals table holds the bands' ends as numbers (the CSV writes them plain); "—" for a figure without one
    totals = table(v, "totals")
    assert totals["columns"][-2:] == ["Likely from (calibrated)", "Likely to"]
    assert [[c["text"] for c in r[-2:]] for r in totals["rows"]] == [
        ends("passersby", 400), ends("visitors", 120), [f"{lo:.1%}", f"{hi:.1%}"], ["—", "—"], ["—", "—"]]
    assert [c["value"] for c in totals["rows"][2][-2:]] == [lo, hi]
    assert [[c["text"] for c in r] for r in table(v, "transitions")["rows"]] == [
        ["星巴克", "优衣库", "4"], ["优衣库", "星巴克", "1"]]
    assert [m["name"] for m in v["charts"]["multiples"]] == ["星巴克", "优衣库"]
    assert v["charts"]["multiples"][0]["current"] == [300, 100, 12, 5]


def test_operator_view(app: Flask) -> None:
    v = login(app, "admin").get(f"/api/v1/operator/dashboard?start={D1}&end={D2}&lang=en").json
    rows = [[c["text"] for c in r][:3] for r in table(v, "malls")["rows"]]
    assert rows == [["万达广场", "720", "200"], ["Joy City", "500", "200"]]
    # the operator's totals: the malls' sums, with the band of the sum, and the connected shoppers apart
    cards = {k["key"]: k for k in v["kpis"]}
    assert (cards["visitors"]["text"], cards["visitors"]["band_text"]) == ("400", likely("visitors", 400))
    assert v["connected"]["value"] == 7 and [r[0]["text"] for r in table(v, "totals")["rows"]][:2] == [
        "Passers-by", "Visitors"]


# ---- CSV -----------------------------------------------------------------------------------------------------


def test_csv_holds_the_tables_of_the_view_as_plain_numbers_with_units_in_the_header(app: Flask) -> None:
    c = login(app, "boss-s1")
    view = c.get(f"/api/v1/stores/s1/dashboard?start={D1}&end={D2}&lang=en").json
    r = c.get(f"/api/v1/stores/s1/dashboard.csv?start={D1}&end={D2}&lang=en")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset
    assert r.headers["Cache-Control"] == "private, no-store"
    assert r.headers["Content-Disposition"] == 'attachment; filename="keliu-store-s1-2026-11-17-2026-11-18.csv"'
    text = r.get_data(as_text=True)
    assert text.startswith("\ufeff")
    lines = list(csv.reader(io.StringIO(text[1:])))
    assert lines[:3] == [[view["title"], "2026-11-17 – 2026-11-18"], [view["compare_note"]], []]
    # the same tables, row for row: every number plain (its value, empty without data), every text as on the page
    pos, blocks = 3, {}
    for t in view["tables"]:
        title, header, rows = lines[pos], lines[pos + 1], lines[pos + 2:pos + 2 + len(t["rows"])]
        assert title == [t["title"]] and lines[pos + 2 + len(t["rows"])] == []
        blocks[t["id"]] = (header, rows)
        for got, want in zip(rows, t["rows"]):
            for g, w in zip(got[1:], want[1:]):
                assert (g == "" if w["value"] is None else float(g) == pytest.approx(w["value"], abs=1e-6)) if "unit" in w \
                    else g == w["text"]
        pos += 3 + len(t["rows"])
    assert pos == len(lines)
    header, summary = blocks["summary"]
    rate = next(row for row in summary if row[0].startswith("Capture rate"))
    assert rate[0] == "Capture rate (ratio 0–1)" and 0 < float(rate[1]) < 1 and not any("%" in x for x in rate[1:3])
    dwell = next(row for row in summary if row[0].startswith("Median dwell"))
    assert dwell[0].endswith("(seconds)") and float(dwell[1]) > 60  # seconds, not "16.2 min"
    header, _rows = blocks["hourly"]
    columns = next(t["columns"] for t in view["tables"] if t["id"] == "hourly")
    assert header == [columns[0]] + [f"{c} (count)" for c in columns[1:]]


def test_csv_in_chinese_names_the_units_in_chinese(app: Flask) -> None:
    text = login(app, "boss-s1").get(f"/api/v1/stores/s1/dashboard.csv?start={D1}&end={D2}").get_data(as_text=True)
    assert "(秒)" in text and "(比例 0–1)" in text and "分钟" not in text and "%" not in text


def test_every_api_route_is_in_the_openapi_fragment(app: Flask) -> None:
    import re

    rules = {re.sub(r"<(\w+:)?(\w+)>", r"{\2}", r.rule) for r in app.url_map.iter_rules()
             if r.endpoint.startswith("dashboards.") and r.rule.startswith("/api/")}
    assert rules == set(OPENAPI_PATHS)


def test_fragment_merges_into_the_portal_document_with_every_ref_resolved() -> None:
    import json
    import re

    from dashboards.builtin.openapi import merge_into
    from portal.web.openapi import DOCUMENT

    merged = merge_into(DOCUMENT)
    assert set(OPENAPI_PATHS) <= set(merged["paths"]) and set(DOCUMENT["paths"]) <= set(merged["paths"])
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(merged)))
    assert refs and refs <= set(merged["components"]["schemas"])
    assert "adminSession" in merged["components"]["securitySchemes"]
    with pytest.raises(ValueError, match="already defines"):
        merge_into(merged)
