"""The demo's generated history (keliu.testing.history): rows shaped as the pipeline writes them, consistent
within a day, closed hours empty, the same for the same seed."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics.metrics import DWELL_FIELDS, LOYALTY_LABELS
from analytics.store import COUNTS
from keliu.testing import history
from keliu.testing.history import Profile, mall_days, store_days

DAYS = [date(2026, 11, 2) + timedelta(days=i) for i in range(14)]  # Monday 2 Nov, two weeks


def test_a_day_is_one_daily_row_and_24_hourly_rows_that_add_up() -> None:
    rows = store_days(Profile("s1", "m1", open_h=10, close_h=22), DAYS, seed=1, now=0.0)
    assert len(rows) == 25 * len(DAYS)
    for i in range(len(DAYS)):
        day, *hours = rows[25 * i:25 * (i + 1)]
        assert day["period"] == "1d" and [h["period"] for h in hours] == ["1h"] * 24
        assert [h["start"] - day["start"] for h in hours] == [3600 * h for h in range(24)]
        for key in COUNTS:
            if key != "staff_excluded":
                assert day[key] == sum(h[key] for h in hours), key
        assert sum(day[f] for f in DWELL_FIELDS) == day["visits"]
        assert sum(day["loyal_" + k] for k in LOYALTY_LABELS) == day["visitors"]
        assert day["new_visitors"] + day["repeat_visitors"] == day["visitors"] > 0
        assert all(h["visitors"] == h["passersby"] == 0 for h in hours[:10] + hours[22:])  # closed
        assert day["capture_rate"] == day["visitors"] / (day["visitors"] + day["passersby"])


def test_weekends_are_busier_and_the_same_seed_gives_the_same_history() -> None:
    p = Profile("s1", "m1")
    rows = store_days(p, DAYS, seed=3, now=0.0)
    daily = {r["day"]: r["visitors"] for r in rows if r["period"] == "1d"}
    weekend = [v for d, v in daily.items() if d.weekday() >= 5]
    weekday = [v for d, v in daily.items() if d.weekday() < 5]
    assert sum(weekend) / len(weekend) > sum(weekday) / len(weekday)
    assert store_days(p, DAYS, seed=3, now=0.0) == rows and store_days(p, DAYS, seed=4, now=0.0) != rows


def test_a_24_hour_store_has_every_hour() -> None:
    rows = store_days(Profile("fm", "m1", open_h=0, close_h=24), DAYS[:1], seed=1, now=0.0)
    assert all(h["visitors"] > 0 for h in rows[1:])


def test_mall_days_count_a_shopper_once_and_have_transitions() -> None:
    rows = store_days(Profile("a", "m1"), DAYS, 1, 0.0) + store_days(Profile("b", "m1"), DAYS, 1, 0.0)
    mdays, trans = mall_days("m1", rows, seed=1, now=0.0)
    assert [m["day"] for m in mdays] == DAYS
    by_day = {d: sum(r["visitors"] for r in rows if r["period"] == "1d" and r["day"] == d) for d in DAYS}
    assert all(0 < m["visitors"] < by_day[m["day"]] for m in mdays)
    assert trans and {(t["src"], t["dst"]) for t in trans} <= {("a", "b"), ("b", "a")}


def test_the_demo_loads_two_weeks_once_and_never_over_computed_days(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time
    import tomllib

    import sqlalchemy as sa

    from analytics import report
    from analytics import store as astore
    from keliu import config, db, demo, tenants

    cfg = config.build(tomllib.loads(demo.demo_toml(str(tmp_path))), {})
    engine = db.make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    db.upgrade(engine)
    tenants.sync(engine, cfg)
    now = time.time()
    assert demo.load_history(engine, now) == len(demo.STORES) * demo.HISTORY_DAYS * 25
    assert demo.load_history(engine, now) == 0  # the days that have rollups keep them
    with engine.connect() as conn:
        malls = conn.execute(sa.select(sa.func.count()).select_from(astore.mall_days)).scalar()
    assert malls == len(demo.MALLS) * demo.HISTORY_DAYS
    from datetime import datetime
    from zoneinfo import ZoneInfo

    today = datetime.fromtimestamp(now, ZoneInfo("Asia/Shanghai")).date()
    week_ago = report.store_day(engine, "starbucks", today - timedelta(days=7))
    assert week_ago["visitors"] and week_ago["passersby"] and week_ago["median_dwell_s"]
    assert report.store_day(engine, "starbucks", today)["visitors"] is None  # today is the sensors' to fill
    engine.dispose()


def test_campaign_outcomes_are_seeded_windowed_and_lifted_only_where_the_message_reached() -> None:
    eligible = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    arms = {i: ("control" if i % 10 == 0 else "treatment") for i in range(1, 20001)}
    reached = frozenset(i for i in arms if arms[i] == "treatment" and i % 7)
    out = history.campaign_outcomes(arms, reached, eligible, 7, seed=3)
    assert out == history.campaign_outcomes(arms, reached, eligible, 7, seed=3)
    assert [o.member_id for o in out] == sorted(arms)
    groups: dict[str, list[history.MemberOutcome]] = {"control": [], "reached": [], "missed": []}
    for o in out:
        groups["control" if arms[o.member_id] == "control" else "reached" if o.member_id in reached
               else "missed"].append(o)
        for at in o.logins:
            assert eligible < at < eligible + timedelta(days=7)
            local = at.astimezone(ZoneInfo("Asia/Shanghai"))
            assert 10 <= local.hour < 22
        # a coupon only for a reached member whose basket reaches the minimum spend
        assert all(not c or (o.member_id in reached and cents >= 10000) for _at, cents, c in o.sales)

    def rate(group: str, what: str) -> float:
        rows = groups[group]
        return sum(1 for o in rows if (o.logins if what == "visit" else o.sales)) / len(rows)

    effect = history.CampaignEffect()
    for group in ("control", "missed"):
        assert abs(rate(group, "visit") - effect.visit_rate) < 0.03, group
        assert abs(rate(group, "buy") - effect.purchase_rate) < 0.025, group
    assert abs(rate("reached", "visit") - effect.visit_rate * (1 + effect.visit_lift)) < 0.02
    assert abs(rate("reached", "buy") - effect.purchase_rate * (1 + effect.purchase_lift)) < 0.02


def test_under_strict_privacy_every_visitor_is_new() -> None:
    """The demo's sensor runs ``strict`` privacy (a device id lives a day): its live days can't see a repeat
    visitor, so the generated history has none either, or today would read "repeat visitors -100 %"."""
    strict = store_days(Profile("s1", "m1", repeats=False), DAYS, seed=1, now=0.0)
    linked = store_days(Profile("s1", "m1"), DAYS, seed=1, now=0.0)
    assert all(r["repeat_visitors"] == 0 and r["new_visitors"] == r["visitors"] == r["loyal_first_time"]
               for r in strict)
    assert sum(r["repeat_visitors"] for r in linked if r["period"] == "1d") > 0
    same = ("visitors", "passersby", "visits", "wifi_logins", "new_members", "median_dwell_s")
    assert [[r[k] for k in same] for r in strict] == [[r[k] for k in same] for r in linked]  # the rest alike
