"""Pure parts of the built-in dashboard: language choice, number formats, comparison dates, funnel, access."""
from __future__ import annotations

import math
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dashboards.builtin import access, i18n, views
from dashboards.errors import Forbidden, ReportError


@pytest.mark.parametrize(("explicit", "header", "lang"), [
    (None, None, "zh-CN"), ("en", None, "en"), ("zh-CN", "en-US", "zh-CN"), (None, "en-US,en;q=0.9", "en"),
    (None, "fr-FR,zh-TW;q=0.8,en;q=0.5", "zh-CN"), (None, "de", "zh-CN"), ("xx", "en", "en"), ("en-GB", None, "en")])
def test_language_choice(explicit: str | None, header: str | None, lang: str) -> None:
    assert i18n.pick(explicit, header) == lang


@pytest.mark.parametrize(("seconds", "en", "zh"), [
    (None, "—", "—"), (42, "42 s", "42 秒"), (900, "15 min", "15 分钟"), (630, "10.5 min", "10.5 分钟"),
    (19 * 3600, "19 h", "19 小时"), (3 * 86400, "3 d", "3 天")])
def test_durations(seconds: float | None, en: str, zh: str) -> None:
    assert (i18n.duration("en", seconds), i18n.duration("zh-CN", seconds)) == (en, zh)


@pytest.mark.parametrize(("cur", "prev", "ratio", "text"), [
    (150, 100, False, "+50.0%"), (50, 100, False, "-50.0%"), (5, 0, False, "—"), (0.25, 0.2, True, "+5.0 pt"),
    (None, 3, False, "—")])
def test_change(cur: float | None, prev: float | None, ratio: bool, text: str) -> None:
    assert i18n.change(cur, prev, ratio=ratio) == text


def test_previous_range_is_the_same_weekdays_a_week_earlier() -> None:
    start, end = views.previous_range(date(2026, 11, 17), date(2026, 11, 23))
    assert (start, end) == (date(2026, 11, 10), date(2026, 11, 16))
    assert start.weekday() == date(2026, 11, 17).weekday()


def at(day: date, hh: int, mm: int, tz: str) -> float:
    return datetime.combine(day, time(hh, mm), ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize(("start", "end", "tz", "now", "until"), [
    # today is the range's last day, or inside it: last week stops at the same wall-clock time
    (date(2026, 11, 18), date(2026, 11, 18), "Asia/Shanghai", (date(2026, 11, 18), 17, 2),
     (date(2026, 11, 11), 17, 2)),
    (date(2026, 11, 16), date(2026, 11, 22), "Asia/Shanghai", (date(2026, 11, 18), 9, 30),
     (date(2026, 11, 11), 9, 30)),
    # across a daylight-saving change (New York springs forward on 2026-03-08): the wall clock, not 168 hours
    (date(2026, 3, 10), date(2026, 3, 10), "America/New_York", (date(2026, 3, 10), 12, 0),
     (date(2026, 3, 3), 12, 0)),
    # a range that is over, or has not begun: whole days
    (date(2026, 11, 17), date(2026, 11, 17), "Asia/Shanghai", (date(2026, 11, 18), 0, 5), None),
    (date(2026, 11, 19), date(2026, 11, 20), "Asia/Shanghai", (date(2026, 11, 18), 23, 59), None)])
def test_previous_until_is_now_a_week_earlier_while_the_range_is_not_over(
        start: date, end: date, tz: str, now: tuple[date, int, int], until: tuple[date, int, int] | None) -> None:
    got = views.previous_until(start, end, tz, at(*now, tz))
    assert got == (None if until is None else at(*until, tz))
    if until is not None and tz == "America/New_York":
        assert at(*now, tz) - got == 7 * 86400 - 3600  # type: ignore[operator]


def test_funnel_shares() -> None:
    steps = views.funnel("en", {"passersby": 300, "visitors": 100, "wifi_logins": 0, "new_members": 0})
    assert [(s["key"], s["value"], s["share"]) for s in steps] == [
        ("heard", 400, None), ("visitors", 100, 0.25), ("wifi_logins", 0, 0.0), ("new_members", 0, None)]


class TUser:
    def __init__(self, role: str, mall_id: str | None = None, store_id: str | None = None) -> None:
        self.name, self.role, self.mall_id, self.store_id = f"t-{role}", role, mall_id, store_id

    def can_see_store(self, store_id: str | None, mall_id: str | None) -> bool:
        return self.role == "admin" or (self.role == "mall" and mall_id == self.mall_id) or (
            self.role == "store" and store_id == self.store_id)

    def can_see_mall(self, mall_id: str | None) -> bool:
        return self.role == "admin" or (self.role == "mall" and mall_id == self.mall_id)


MALL_OF = {"s1": "m1", "s2": "m1", "s3": "m2"}


@pytest.mark.parametrize(("user", "store", "outcome"), [
    (TUser("store", store_id="s1"), "s1", "m1"), (TUser("store", store_id="s1"), "s2", Forbidden),
    (TUser("store", store_id="s1"), "ghost", Forbidden), (TUser("mall", "m1"), "s2", "m1"),
    (TUser("mall", "m1"), "s3", Forbidden), (TUser("admin"), "s3", "m2"), (TUser("admin"), "ghost", ReportError)])
def test_check_store(user: Any, store: str, outcome: Any) -> None:
    if isinstance(outcome, str):
        assert access.check_store(user, store, MALL_OF) == outcome
    else:
        with pytest.raises(outcome) as exc:
            access.check_store(user, store, MALL_OF)
        assert exc.value.status == (403 if outcome is Forbidden else 404)


def test_range_defaults_and_limits() -> None:
    today = date(2026, 11, 18)
    assert access.parse_range(None, None, today) == (today, today)
    assert access.parse_range("2026-11-01", None, today) == (date(2026, 11, 1), date(2026, 11, 1))
    assert access.parse_range(None, "2026-11-02", today) == (date(2026, 11, 2), date(2026, 11, 2))
    assert access.parse_range("2025-11-18", "2026-11-18", today)[0] == date(2025, 11, 18)  # 366 days
    with pytest.raises(ReportError):
        access.parse_range("2025-11-17", "2026-11-18", today)


@pytest.mark.parametrize(("kind", "band", "text", "values"), [
    ("int", [84.2, 148.1], "84–149", [84, 149]),  # counts widened outward to whole numbers
    ("ratio", [0.2058, 0.3098], "20.6%–31.0%", [0.2058, 0.3098]),
    ("duration", [1380.0, 2922.0], "23 min–48.7 min", [1380.0, 2922.0]),
    ("int", None, "", ["—", "—"])])  # a figure without a band (exact, or no data)
def test_a_band_as_shown_and_as_table_cells(kind: str, band: list[float] | None, text: str, values: list[Any]) -> None:
    assert views.band_text("en", kind, band) == text
    cells = views.band_cells("en", kind, band)
    assert [c["value"] for c in cells] == values
    assert all(("unit" in c) == (band is not None) for c in cells)  # numbers in their unit, for the CSV


def test_cards_carry_the_reports_bands_and_bases() -> None:
    from analytics.bands import band, uncertainty

    figures = {"visitors": 120, "passersby": 400, "capture_rate": 120 / 520, "wifi_logins": 15, "new_members": 6}
    cards = {k["key"]: k for k in views.kpis("en", figures | {"uncertainty": uncertainty(figures)}, {},
                                             views.MALL_TOTALS)}
    lo, hi = band("visitors", 120)  # the calibrated band (recalibrating moves it), widened to whole numbers
    assert (cards["visitors"]["band_text"], cards["visitors"]["basis"]) == (
        f"likely {math.floor(lo)}–{math.ceil(hi)}", "linked_devices")
    assert (cards["wifi_logins"]["band"], cards["wifi_logins"]["basis"], cards["wifi_logins"]["band_text"]) == (
        None, None, "")
    # a report without uncertainty (an older one): the cards as before, no band
    assert all(k["band"] is None for k in views.kpis("en", figures, {}, views.MALL_TOTALS))


@pytest.mark.parametrize(("coverage", "last_poll", "now", "text"), [
    (None, None, 1000.0, ""),  # no read recorded: nothing to say (the detail says whether stations were listed)
    (1.0, 400.0, 1000.0, "station list last read 10 min ago"),  # read all the opening hours: only when last
    (0.5, 400.0, 1000.0, ("station list read in 50.0% of the opening hours: at least this many · "
                          "station list last read 10 min ago")),
    (0.875, 400.0, None, "station list read in 87.5% of the opening hours: at least this many"),  # no clock given
])
def test_the_connected_card_says_how_much_of_the_day_the_aps_list_was_read(
        coverage: float | None, last_poll: float | None, now: float | None, text: str) -> None:
    block = {"basis": "connected_stations", "visitors": 3, "visits": 3, "median_dwell_s": 600.0,
             "coverage": coverage, "last_poll": last_poll}
    card = views.connected_view("en", {"connected": block}, {}, now)
    assert card is not None and (card["health_text"], card["coverage"], card["value"]) == (text, coverage, 3)
