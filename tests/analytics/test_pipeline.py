"""The jobs on a real database (SQLite, PostgreSQL): rollups, idempotency, funnel from the portal's tables, mall
transitions, purge, and the report API of docs/CONTRACTS.md."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from analytics import pipeline, report, store
from keliu import config, db
from sensor import store as sensor_store
from tests.analytics.builders import DAY, DAY_START, tenant_db, tsighting, tvisit

H = 3600
NOW = DAY_START + 2 * 86400


def make_cfg(url: str, **analytics):
    return config.load(overrides={
        "database_url": url,
        "malls": [{"id": "m1", "name": "Mall One"}],
        "stores": [{"id": "s1", "mall": "m1", "name": "Shoes"}, {"id": "s2", "mall": "m1", "name": "Tea"}],
        "analytics": analytics}, env={})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def env(request, tmp_path):
    with tenant_db(request, make_cfg) as made:
        yield made


def passer(name, t, store_id="s1"):
    return [tsighting(t, name, -85, store_id), tsighting(t + 20, name, -82, store_id)]


def seed(engine):
    batch = tvisit("a", 11 * H, 10) + tvisit("b", 11 * H, 40) + passer("p", 12 * H) + passer("q", 13 * H)
    batch += tvisit("a", 12 * H, 15, store="s2") + tvisit("c", 14 * H, 25, store="s2")
    batch += tvisit("b", 14 * H, 10, store="s2") + passer("p", 12 * H + 300, "s2")
    return sensor_store.insert_sightings(engine, batch)


def test_rollups_and_store_day_report(env):
    cfg, engine = env
    assert seed(engine) > 0
    rows = pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)
    assert len(rows) == 288 + 24 + 1
    r = report.store_day(engine, "s1", DAY)
    assert (r["visitors"], r["passersby"], r["visits"]) == (2, 2, 2)
    assert r["capture_rate"] == pytest.approx(0.5)
    assert r["median_dwell_s"] == 1560.0  # 11 and 41 min: observed 10 and 40 (+ a probe interval, METRICS.md)
    assert list(r["dwell_buckets"]) == ["<5m", "5-20m", "20-60m", "1-6h", ">6h"]
    assert r["dwell_buckets"]["5-20m"] == 1 and r["dwell_buckets"]["20-60m"] == 1
    assert r["loyalty_buckets"]["first_time"] == 2
    assert (r["new_visitors"], r["repeat_visitors"], r["staff_excluded"]) == (2, 0, 0)
    assert len(r["hourly_visitors"]) == 24 and r["hourly_visitors"][11] == 2
    assert r["hourly_passersby"][12] == 1 and r["hourly_passersby"][13] == 1
    assert (r["wifi_logins"], r["new_members"]) == (0, 0)
    assert report.last_report(engine, "s1") == pytest.approx(DAY_START + 13 * H + 20)
    assert report.last_report(engine, "nowhere") is None


def test_jobs_are_idempotent(env):
    cfg, engine = env
    seed(engine)
    first = pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)
    pipeline.close_visits(engine, cfg, "s1", DAY, NOW)
    pipeline.detect_staff(engine, cfg, "s1", DAY)
    again = pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)
    assert first == again
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(store.rollups)).scalar()
        v = conn.execute(sa.select(store.visits.c.closed)).scalars().all()
    assert n == 313 and v == [True, True]
    assert sensor_store.insert_sightings(engine, tvisit("a", 11 * H, 10)) == 0  # re-delivered batch


def test_visits_still_open_are_counted_but_not_closed(env):
    cfg, engine = env
    seed(engine)
    assert pipeline.close_visits(engine, cfg, "s1", DAY, DAY_START + 11 * H + 45 * 60) == 2
    with engine.connect() as conn:
        closed = dict(conn.execute(sa.select(store.visits.c.dwell_s, store.visits.c.closed)).all())
    assert closed == {660.0: True, 2460.0: False}


def test_mall_counts_shoppers_once_with_transitions(env):
    cfg, engine = env
    seed(engine)
    for s in ("s1", "s2"):
        pipeline.rollup_store(engine, cfg, s, DAY, NOW)
    out = pipeline.rollup_mall(engine, "m1", DAY, NOW)
    assert (out["visitors"], out["passersby"]) == (3, 2)
    m = report.mall_range(engine, "m1", DAY, DAY)
    assert [(s["id"], s["visitors"]) for s in m["stores"]] == [("s1", 2), ("s2", 3)]
    assert m["totals"]["visitors"] == 3
    assert m["transitions"] == [{"from": "s1", "to": "s2", "count": 2}]
    op = report.operator_range(engine, DAY, DAY)
    assert [x["id"] for x in op["malls"]] == ["m1"] and op["totals"]["visitors"] == 3


def test_store_range_sums_days_and_repeats_are_seen_next_day(env):
    cfg, engine = env
    seed(engine)
    day2 = [s for n in ("a", "z") for s in tvisit(n, 86400 + 11 * H, 20)]
    sensor_store.insert_sightings(engine, day2)
    for d in (DAY, DAY + timedelta(days=1)):
        pipeline.rollup_store(engine, cfg, "s1", d, NOW)
    r = report.store_range(engine, "s1", DAY, DAY + timedelta(days=2))
    assert [d["visitors"] for d in r["days"]] == [2, 2, None]  # the third day has no data: None, not 0
    assert r["visitors"] == 4 and r["repeat_visitors"] == 1 and r["new_visitors"] == 3
    assert r["loyalty_buckets"]["weekly"] == 1
    assert r["median_dwell_s"] == 1410.0  # visit-weighted median of (1560 x2, 1260 x2)
    assert r["hourly_visitors"][11] == 4


def test_funnel_reads_the_portals_tables(env):
    from sqlalchemy.orm import Session

    from portal.store.models import Consent, Login, Member

    cfg, engine = env
    seed(engine)
    t = datetime.fromtimestamp(DAY_START + 11 * H + 120, UTC)
    with Session(engine) as s:
        def member(phone: str, consents: list[tuple[str, bool, datetime, str]]) -> Member:
            m = Member(phone_e164=phone, created_at=t, first_store_id="s1", last_seen_at=t)
            s.add(m)
            s.flush()
            for kind, granted, ts, store_id in consents:
                s.add(Consent(member_id=m.id, kind=kind, version="v1", granted=granted, ts=ts, store_id=store_id))
            return m

        # opted in to membership here today: the one new member
        m = member("+8613800000000", [("terms", True, t, "s1"), ("marketing", True, t, "s1")])
        # logged in (the terms the law requires) but declined membership: not a member
        member("+8613800000001", [("terms", True, t, "s1"), ("marketing", False, t, "s1")])
        # opted in yesterday, again today: a member already
        member("+8613800000002", [("marketing", True, t - timedelta(days=1), "s1"), ("marketing", True, t, "s1")])
        # opted in today at another store: that store's new member
        member("+8613800000003", [("marketing", True, t, "s2")])
        for i in range(3):
            s.add(Login(ts=t + timedelta(minutes=i), store_id="s1", member_id=m.id, device_id="d" * 16, method="sms"))
        s.add(Login(ts=t - timedelta(days=1), store_id="s1", member_id=m.id, device_id="d" * 16, method="sms"))
        s.commit()
    pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)
    r = report.store_day(engine, "s1", DAY)
    assert (r["wifi_logins"], r["new_members"]) == (3, 1)
    # a day the sensor has no data for: its sensor figures are None, the portal's still counted
    before = report.store_day(engine, "s1", DAY - timedelta(days=1))
    assert (before["visitors"], before["passersby"], before["capture_rate"], before["median_dwell_s"]) == (
        None, None, None, None)
    assert (before["wifi_logins"], before["new_members"]) == (1, 1)
    assert before["hourly_visitors"] == [None] * 24


def test_membership_is_the_portals_marketing_consent():
    from portal.core.login_plan import CONSENT_KINDS, OPTIONAL_CONSENTS

    assert store.MEMBERSHIP_CONSENT in CONSENT_KINDS and store.MEMBERSHIP_CONSENT in OPTIONAL_CONSENTS


def test_funnel_is_zero_before_the_portal_tables_exist(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    with engine.connect() as conn:
        a = datetime(2026, 1, 5, tzinfo=UTC)
        assert store.portal_times(conn, "s1", a, a + timedelta(days=1)) == ([], [])


def test_purge_keeps_rollups(env):
    cfg, engine = env
    seed(engine)
    pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)
    out = pipeline.purge(engine, cfg, DAY_START + 40 * 86400)
    assert out["sightings"] > 0 and out["visits"] == 2
    assert pipeline.rollup_store(engine, cfg, "s1", DAY, NOW) == []  # nothing to recompute: rollups stay
    assert report.store_day(engine, "s1", DAY)["visitors"] == 2


def test_per_store_rules_apply(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    cfg = make_cfg(url, stores=[{"id": "s1", "min_dwell_s": 1200}])
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed(engine)
    pipeline.rollup_store(engine, cfg, "s1", DAY, NOW)
    assert report.store_day(engine, "s1", DAY)["visitors"] == 1  # the 10-minute visit no longer counts


def test_unknown_store_uses_default_zone_and_no_mall(env):
    cfg, engine = env
    sensor_store.insert_sightings(engine, tvisit("x", 11 * H, 10, store="popup"))
    rows = pipeline.rollup_store(engine, cfg, "popup", date(2026, 1, 5), NOW)
    assert rows[-1]["mall"] == pipeline.UNKNOWN_MALL and rows[-1]["visitors"] == 1
