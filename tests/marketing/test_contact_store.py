"""The contact policy at send time against real databases: caps hold under racing workers, sends happen once.

Workers race with a barrier (threads, one connection each) at one member; the caps must hold exactly. The race is
real on PostgreSQL (row locks); on SQLite writers serialize, and the same code must give the same answer.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu import db
from keliu.tenants import MALLS, STORES
from marketing.core.contact import PURPOSES, ContactPolicy, Send
from marketing.store import contact as store
from marketing.store.campaigns import campaign_sends, campaigns, contact_counts

pytestmark = pytest.mark.integration

NOON = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
MEMBERS = sa.table("members", sa.column("id"), sa.column("created_at", db.TS), sa.column("first_store_id"),
                   sa.column("last_seen_at", db.TS))


def everything(conn: Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(PURPOSES), frozenset()


OPEN: list[Engine] = []


def setup(url: str, n_campaigns: int = 1, n_members: int = 1) -> Engine:
    engine = db.make_engine(url)
    OPEN.append(engine)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(MALLS).values(id="m1", name="M"))
        conn.execute(sa.insert(STORES).values(id="s1", mall_id="m1", name="S", timezone="Asia/Shanghai"))
        for m in range(1, n_members + 1):
            conn.execute(sa.insert(MEMBERS).values(id=m, created_at=NOON, first_store_id="s1", last_seen_at=NOON))
        for c in range(1, n_campaigns + 1):
            conn.execute(sa.insert(campaigns).values(
                id=c, store_id="s1", name=f"c{c}", trigger="lapsed", channel="sms", category="member_benefit",
                status="approved", control_share=0.1, salt=f"salt{c}", cooldown_s=0, window_days=7, created_at=NOON))
    return engine


def race(engine: Engine, sends: list[Send], policy: ContactPolicy) -> list[store.Reservation]:
    barrier = threading.Barrier(len(sends))
    out: list[store.Reservation | None] = [None] * len(sends)

    def one(i: int) -> None:
        barrier.wait()
        out[i] = store.reserve(engine, policy, sends[i], NOON, everything)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(sends))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.getfixturevalue("postgres_url" if request.param == "postgresql" else "sqlite_url"))
    while OPEN:
        OPEN.pop().dispose()


def test_racing_campaigns_never_pass_the_daily_cap(url: str) -> None:
    engine = setup(url, n_campaigns=24)
    policy = ContactPolicy(daily_cap=3, channel_caps={"sms": 3, "wechat": 3})
    sends = [Send(1, c, "sms" if c % 2 else "wechat", "Asia/Shanghai") for c in range(1, 25)]
    results = race(engine, sends, policy)
    reserved = [r for r in results if r.status == "reserved"]
    assert len(reserved) == 3
    assert {r.decision.reason for r in results if r.status == "suppressed"} <= {"daily_cap", "channel_cap"}
    with engine.connect() as conn:
        n = conn.execute(sa.select(contact_counts.c.n).where(contact_counts.c.channel == "*")).scalar()
        recorded = dict(conn.execute(sa.select(campaign_sends.c.status, sa.func.count())
                                     .group_by(campaign_sends.c.status)).all())
    assert n == 3
    assert recorded == {"reserved": 3, "suppressed": 21}


def test_the_channel_cap_holds_and_gives_its_place_back_to_the_daily_cap(url: str) -> None:
    engine = setup(url, n_campaigns=10)
    policy = ContactPolicy(daily_cap=3, channel_caps={"sms": 1, "wechat": 3})
    results = race(engine, [Send(1, c, "sms", "Asia/Shanghai") for c in range(1, 9)], policy)
    assert [r.status for r in results].count("reserved") == 1
    # the seven suppressed SMS left the daily count at 1: two WeChat messages may still go
    assert store.reserve(engine, policy, Send(1, 9, "wechat", "Asia/Shanghai"), NOON, everything).status == "reserved"
    assert store.reserve(engine, policy, Send(1, 10, "wechat", "Asia/Shanghai"), NOON, everything).status == "reserved"


def test_one_send_per_campaign_step_and_member_however_often_it_is_tried(url: str) -> None:
    engine = setup(url)
    results = race(engine, [Send(1, 1, "sms", "Asia/Shanghai")] * 16, ContactPolicy())
    assert sorted(r.status for r in results) == ["duplicate"] * 15 + ["reserved"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(campaign_sends)).scalar() == 1


def test_withdrawn_consent_quiet_hours_and_control_are_recorded_never_counted(url: str) -> None:
    engine = setup(url, n_campaigns=3, n_members=2)
    policy = ContactPolicy()

    def no_sms(conn: Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
        return frozenset(PURPOSES) - {"sms_marketing"}, frozenset()

    r = store.reserve(engine, policy, Send(1, 1, "sms", "Asia/Shanghai"), NOON, no_sms)
    assert (r.status, r.decision.reason) == ("suppressed", "no_consent:sms_marketing")
    night = NOON + timedelta(hours=10)  # 22:00 in Shanghai
    r = store.reserve(engine, policy, Send(1, 2, "sms", "Asia/Shanghai"), night, everything)
    assert (r.status, r.decision.reason) == ("suppressed", "quiet_hours")
    r = store.reserve(engine, policy, Send(2, 3, "sms", "Asia/Shanghai"), NOON, everything, control=True)
    assert r.status == "control" and r.decision.send
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contact_counts)).scalar() == 0
        reasons = sorted(conn.execute(sa.select(campaign_sends.c.reason).where(
            campaign_sends.c.status == "suppressed")).scalars())
    assert reasons == ["no_consent:sms_marketing", "quiet_hours"]


def test_mark_only_moves_a_reserved_send(url: str) -> None:
    engine = setup(url)
    r = store.reserve(engine, ContactPolicy(), Send(1, 1, "sms", "Asia/Shanghai"), NOON, everything)
    assert r.send_id is not None
    store.mark(engine, r.send_id, "sent")
    store.mark(engine, r.send_id, "failed")  # too late: it was sent
    with engine.connect() as conn:
        assert conn.execute(sa.select(campaign_sends.c.status)).scalar() == "sent"
    with pytest.raises(ValueError, match="status"):
        store.mark(engine, r.send_id, "delivered")
