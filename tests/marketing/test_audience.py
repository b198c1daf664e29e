"""Enrolling a trigger's members: the SQL arm equals the pure holdout's, re-running changes nothing, and erasing a
member deletes their enrollments (the table has no foreign keys)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu import db
from keliu.tenants import MALLS, STORES
from marketing.core import holdout
from marketing.errors import FieldInvalid
from marketing.store import audience, erase_member
from marketing.store.campaigns import campaign_members, campaigns

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = str(request.getfixturevalue("migrated_postgres_url" if request.param == "postgresql" else "migrated_sqlite_url"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    members = [{"id": i, "created_at": NOW, "first_store_id": "s1" if i % 3 else "s2",
                "last_seen_at": NOW - timedelta(days=i % 60)} for i in range(1, 3001)]
    with engine.begin() as conn:
        conn.execute(sa.insert(MALLS).values(id="m1", name="M"))
        conn.execute(sa.insert(STORES), [{"id": s, "mall_id": "m1", "name": s, "timezone": "Asia/Shanghai"}
                                         for s in ("s1", "s2")])
        table = sa.table("members", sa.column("id"), sa.column("first_store_id"), sa.column("created_at", db.TS),
                         sa.column("last_seen_at", db.TS))
        conn.execute(sa.insert(table), members)
        conn.execute(sa.insert(campaigns).values(
            id=1, store_id="s1", name="lapsed", trigger="lapsed", channel="sms", category="member_benefit",
            status="approved", control_share=0.2, salt="pepper", cooldown_s=0, window_days=7, created_at=NOW))
    yield engine
    engine.dispose()


def test_lapsed_members_are_enrolled_with_the_pure_holdouts_arm(engine: Engine) -> None:
    counts = audience.enroll_lapsed(engine, 1, "pepper", 0.2, NOW - timedelta(days=30), NOW)
    lapsed = [i for i in range(1, 3001) if i % 60 > 30]
    assert counts["treatment"] + counts["control"] == len(lapsed)
    with engine.connect() as conn:
        arms = dict(conn.execute(sa.select(campaign_members.c.member_id, campaign_members.c.arm)).all())
    assert arms == {i: holdout.assign(b"pepper", i, 0.2) for i in lapsed}
    assert 0.15 < counts["control"] / len(lapsed) < 0.25


def test_sql_and_python_give_every_member_the_same_arm_for_any_salt_and_share(postgres_url: str) -> None:
    """The arms are computed in SQL on PostgreSQL only (SQLite: in Python)."""
    ids = [*range(1, 5001), 2**31 - 1]
    values = sa.values(sa.column("id", sa.Integer), name="ids").data([(i,) for i in ids])
    engine = db.make_engine(postgres_url)
    with engine.connect() as conn:
        for salt, share in (("pepper", 0.2), ("", 0.1), ("盐", 0.5), ("x" * 32, 0.999), ("s", 0.0)):
            arms = dict(conn.execute(sa.select(values.c.id, audience.arm_sql(values.c.id, salt, share))).all())
            assert arms == {i: holdout.assign(salt.encode(), i, share) for i in ids}, (salt, share)
    engine.dispose()


def test_rerunning_a_trigger_keeps_first_arms_and_times(engine: Engine) -> None:
    first = audience.enroll_lapsed(engine, 1, "pepper", 0.2, NOW - timedelta(days=30), NOW, store_id="s1")
    later = NOW + timedelta(days=1)
    again = audience.enroll_lapsed(engine, 1, "pepper", 0.2, NOW - timedelta(days=30), later, store_id="s1")
    assert again == first
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(campaign_members.c.eligible_at)).scalars()) == {NOW}


def test_the_members_table_clause_matches_the_real_schema(engine: Engine) -> None:
    real = {c["name"] for c in sa.inspect(engine).get_columns("members")}
    assert {c.name for c in audience.MEMBERS.columns} <= real


def test_enrolling_a_campaign_that_does_not_exist_is_refused(engine: Engine) -> None:
    with pytest.raises(FieldInvalid, match="campaign_id"):
        audience.enroll_lapsed(engine, 99, "pepper", 0.2, NOW - timedelta(days=30), NOW)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(campaign_members)).scalar() == 0


def test_erasing_a_member_deletes_their_enrollments_which_have_no_foreign_key(engine: Engine) -> None:
    assert [fk for fk in sa.inspect(engine).get_foreign_keys("campaign_members")] == []
    audience.enroll_lapsed(engine, 1, "pepper", 0.2, NOW - timedelta(days=30), NOW)
    with engine.begin() as conn:
        done = erase_member(conn, 31)
        conn.execute(sa.text("DELETE FROM members WHERE id = 31"))
    assert done["campaign_members"] == 1
    audience.enroll_lapsed(engine, 1, "pepper", 0.2, NOW - timedelta(days=30), NOW)
    with engine.connect() as conn:
        enrolled = set(conn.execute(sa.select(campaign_members.c.member_id)).scalars())
    assert 31 not in enrolled and 32 in enrolled


def test_erasure_waits_for_an_enrollment_in_progress(migrated_postgres_url: str) -> None:
    engine = db.make_engine(migrated_postgres_url)
    db.upgrade(engine)
    erased = threading.Event()

    def erase() -> None:
        with engine.begin() as conn:
            erase_member(conn, 1)
        erased.set()

    with engine.begin() as enrolling:
        audience.enrollment_lock(enrolling)  # an enrollment holds it until it commits
        eraser = threading.Thread(target=erase)
        eraser.start()
        with engine.connect() as conn:  # the eraser is seen waiting for the lock, not finished
            for _ in range(500):
                waiting = conn.execute(sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar()
                conn.rollback()
                if waiting:
                    break
                erased.wait(0.01)
        assert waiting == 1 and not erased.is_set()
    eraser.join(10)
    assert erased.is_set()
    engine.dispose()
