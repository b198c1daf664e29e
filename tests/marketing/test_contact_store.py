"""The contact policy at send time against real databases: caps hold under racing workers, sends happen once.

Workers race with a barrier (threads, one connection each) at one member; the caps must hold exactly. The race is
real on PostgreSQL (row locks); on SQLite writers serialize, and the same code must give the same answer. Every test
runs each executor: the one statement on PostgreSQL (``pg``), the statement-by-statement one on PostgreSQL and
SQLite (``portable``); a scripted day of sends gives the same rows and answers through both.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu import db
from keliu.tenants import MALLS, STORES
from marketing.core.contact import PURPOSES, ContactPolicy, Decision, Send
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


Reserve = Callable[..., store.Reservation]


def race(engine: Engine, sends: list[Send], policy: ContactPolicy, reserve: Reserve) -> list[store.Reservation]:
    barrier = threading.Barrier(len(sends))
    out: list[store.Reservation | None] = [None] * len(sends)

    def one(i: int) -> None:
        barrier.wait()
        out[i] = reserve(engine, policy, sends[i], NOON, everything)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(sends))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


@pytest.fixture(params=["postgresql-pg", "postgresql-portable", "sqlite-portable"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.getfixturevalue("migrated_postgres_url" if request.param.startswith("postgresql")
                                         else "migrated_sqlite_url"))
    while OPEN:
        OPEN.pop().dispose()


@pytest.fixture
def reserve(request: pytest.FixtureRequest, url: str) -> Reserve:
    """The executor under test (``store.reserve`` picks ``reserve_pg`` on PostgreSQL)."""
    if request.node.callspec.params["url"].endswith("-pg"):
        return store.reserve
    return store.reserve_portable


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {str(c): int(n) for c, n in conn.execute(sa.select(contact_counts.c.channel, contact_counts.c.n))}


def test_racing_campaigns_never_pass_the_daily_cap(url: str, reserve: Reserve) -> None:
    engine = setup(url, n_campaigns=24)
    policy = ContactPolicy(daily_cap=3, channel_caps={"sms": 3, "wechat": 3})
    sends = [Send(1, c, "sms" if c % 2 else "wechat", "Asia/Shanghai") for c in range(1, 25)]
    results = race(engine, sends, policy, reserve)
    reserved = [r for r in results if r.status == "reserved"]
    assert len(reserved) == 3
    assert {r.decision.reason for r in results if r.status == "suppressed"} <= {"daily_cap", "channel_cap"}
    with engine.connect() as conn:
        n = conn.execute(sa.select(contact_counts.c.n).where(contact_counts.c.channel == "*")).scalar()
        recorded = dict(conn.execute(sa.select(campaign_sends.c.status, sa.func.count())
                                     .group_by(campaign_sends.c.status)).all())
    assert n == 3
    assert recorded == {"reserved": 3, "suppressed": 21}
    by_channel = {c: sum(1 for r, snd in zip(results, sends) if r.status == "reserved" and snd.channel == c)
                  for c in ("sms", "wechat")}
    assert counts(engine) == {"*": 3, **{c: k for c, k in by_channel.items() if k}}


def test_the_channel_cap_holds_and_gives_its_place_back_to_the_daily_cap(url: str, reserve: Reserve) -> None:
    engine = setup(url, n_campaigns=10)
    policy = ContactPolicy(daily_cap=3, channel_caps={"sms": 1, "wechat": 3})
    results = race(engine, [Send(1, c, "sms", "Asia/Shanghai") for c in range(1, 9)], policy, reserve)
    assert [r.status for r in results].count("reserved") == 1
    assert {r.decision.reason for r in results if r.status == "suppressed"} == {"channel_cap"}
    # the seven suppressed SMS left the daily count at 1: two WeChat messages may still go
    assert counts(engine) == {"*": 1, "sms": 1}
    assert reserve(engine, policy, Send(1, 9, "wechat", "Asia/Shanghai"), NOON, everything).status == "reserved"
    assert reserve(engine, policy, Send(1, 10, "wechat", "Asia/Shanghai"), NOON, everything).status == "reserved"
    assert counts(engine) == {"*": 3, "sms": 1, "wechat": 2}


def test_one_send_per_campaign_step_and_member_however_often_it_is_tried(url: str, reserve: Reserve) -> None:
    engine = setup(url)
    results = race(engine, [Send(1, 1, "sms", "Asia/Shanghai")] * 16, ContactPolicy(), reserve)
    assert sorted(r.status for r in results) == ["duplicate"] * 15 + ["reserved"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(campaign_sends)).scalar() == 1
    # a duplicate that raced the first claim gave back what it counted
    assert counts(engine) == {"*": 1, "sms": 1}
    again = reserve(engine, ContactPolicy(), Send(1, 1, "sms", "Asia/Shanghai"), NOON, everything)
    assert (again.status, again.send_id, counts(engine)) == ("duplicate", None, {"*": 1, "sms": 1})


def test_withdrawn_consent_quiet_hours_and_control_are_recorded_never_counted(url: str, reserve: Reserve) -> None:
    engine = setup(url, n_campaigns=3, n_members=2)
    policy = ContactPolicy()

    def no_sms(conn: Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
        return frozenset(PURPOSES) - {"sms_marketing"}, frozenset()

    r = reserve(engine, policy, Send(1, 1, "sms", "Asia/Shanghai"), NOON, no_sms)
    assert (r.status, r.decision.reason) == ("suppressed", "no_consent:sms_marketing")
    night = NOON + timedelta(hours=10)  # 22:00 in Shanghai
    r = reserve(engine, policy, Send(1, 2, "sms", "Asia/Shanghai"), night, everything)
    assert (r.status, r.decision.reason) == ("suppressed", "quiet_hours")
    assert r.decision.not_before == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    r = reserve(engine, policy, Send(2, 3, "sms", "Asia/Shanghai"), NOON, everything, control=True)
    assert r.status == "control" and r.decision.send
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(contact_counts)).scalar() == 0
        reasons = sorted(conn.execute(sa.select(campaign_sends.c.reason).where(
            campaign_sends.c.status == "suppressed")).scalars())
    assert reasons == ["no_consent:sms_marketing", "quiet_hours"]


def test_mark_only_moves_a_reserved_send(url: str, reserve: Reserve) -> None:
    engine = setup(url)
    r = reserve(engine, ContactPolicy(), Send(1, 1, "sms", "Asia/Shanghai"), NOON, everything)
    assert r.send_id is not None
    store.mark(engine, r.send_id, "sent")
    store.mark(engine, r.send_id, "failed")  # too late: it was sent
    with engine.connect() as conn:
        assert conn.execute(sa.select(campaign_sends.c.status)).scalar() == "sent"
    with pytest.raises(ValueError, match="status"):
        store.mark(engine, r.send_id, "delivered")


def consents_of(member_id: int) -> Callable[[Connection, int], tuple[frozenset[str], frozenset[str]]]:
    """Member 2 refused WeChat; member 3 never consented to SMS marketing nor to presence offers."""
    def read(conn: Connection, asked: int) -> tuple[frozenset[str], frozenset[str]]:
        assert asked == member_id
        if member_id == 3:
            return frozenset(PURPOSES) - {"sms_marketing", "presence_offers"}, frozenset()
        return frozenset(PURPOSES), frozenset({"wechat"}) if member_id == 2 else frozenset()
    return read


CAPS = ContactPolicy(daily_cap=3, channel_caps={"sms": 1, "wechat": 2})
NIGHT = NOON + timedelta(hours=10)
#: a day of sends: (member, campaign, channel, step, at, control, policy, send's extras) and the expected answer
DAY: list[tuple[int, int, str, int, datetime, bool, ContactPolicy, dict[str, Any], tuple[str, str | None]]] = [
    (1, 1, "sms", 0, NOON, False, CAPS, {}, ("reserved", None)),
    (1, 2, "sms", 0, NOON, False, CAPS, {}, ("suppressed", "channel_cap")),
    (1, 1, "sms", 0, NOON, False, CAPS, {}, ("duplicate", "duplicate")),
    (1, 3, "wechat", 0, NOON, False, CAPS, {"cooldown": timedelta(hours=1)}, ("reserved", None)),
    (1, 3, "wechat", 1, NOON + timedelta(minutes=10), False, CAPS, {"cooldown": timedelta(hours=1)},
     ("suppressed", "cooldown")),
    (1, 3, "wechat", 2, NOON + timedelta(hours=2), False, CAPS, {"cooldown": timedelta(hours=1)},
     ("reserved", None)),
    (1, 4, "webhook", 0, NOON, False, CAPS, {}, ("suppressed", "daily_cap")),
    (1, 4, "webhook", 1, NOON, True, CAPS, {}, ("suppressed", "daily_cap")),
    (1, 5, "splash", 0, NOON, False, CAPS, {}, ("reserved", None)),
    (1, 5, "splash", 1, NIGHT, False, CAPS, {}, ("reserved", None)),
    (2, 1, "wechat", 0, NOON, False, CAPS, {}, ("suppressed", "withdrawn")),
    (2, 2, "sms", 0, NIGHT, False, CAPS, {}, ("suppressed", "quiet_hours")),
    (2, 3, "sms", 0, NOON, True, CAPS, {}, ("control", None)),
    (2, 4, "sms", 0, NOON, False, CAPS, {}, ("reserved", None)),
    (2, 5, "sms", 0, NOON, True, CAPS, {}, ("suppressed", "channel_cap")),
    (2, 6, "webhook", 0, NOON, False, CAPS, {"presence_triggered": True}, ("reserved", None)),
    (3, 1, "sms", 0, NOON, False, CAPS, {}, ("suppressed", "no_consent:sms_marketing")),
    (3, 2, "webhook", 0, NOON, False, CAPS, {"presence_triggered": True},
     ("suppressed", "no_consent:presence_offers")),
    (3, 3, "webhook", 0, NOON, False, ContactPolicy(daily_cap=0), {}, ("suppressed", "daily_cap")),
    (3, 4, "webhook", 0, NOON, False, ContactPolicy(channel_caps={"webhook": 0}), {}, ("suppressed", "channel_cap")),
    (3, 5, "webhook", 0, NOON, False, CAPS, {}, ("reserved", None)),
]


def run_day(engine: Engine, reserve: Reserve) -> tuple[list[Any], list[Any], list[Any]]:
    answers = []
    for member, campaign, channel, step, at, control, policy, extras, _ in DAY:
        r = reserve(engine, policy, Send(member, campaign, channel, "Asia/Shanghai", **extras),  # type: ignore[arg-type]
                    at, consents_of(member), step=step, control=control)
        answers.append((r.status, r.decision, r.send_id is None))
    s = campaign_sends
    with engine.connect() as conn:
        sends = conn.execute(sa.select(s.c.campaign_id, s.c.step, s.c.member_id, s.c.channel, s.c.status, s.c.reason,
                                       s.c.ts).order_by(s.c.campaign_id, s.c.step, s.c.member_id)).all()
        rows = conn.execute(sa.select(contact_counts).order_by(*contact_counts.primary_key.columns)).all()
    return answers, [tuple(r) for r in sends], [tuple(r) for r in rows]


def test_both_executors_give_the_same_answers_and_rows(migrated_postgres_url: str, second_migrated_postgres_url: str,
                                                       migrated_sqlite_url: str) -> None:
    one_statement = run_day(setup(migrated_postgres_url, n_campaigns=6, n_members=3), store.reserve_pg)
    portable = run_day(setup(second_migrated_postgres_url, n_campaigns=6, n_members=3), store.reserve_portable)
    on_sqlite = run_day(setup(migrated_sqlite_url, n_campaigns=6, n_members=3), store.reserve_portable)
    while OPEN:
        OPEN.pop().dispose()
    assert [(status, d.reason) for status, d, _ in one_statement[0]] == [expected for *_, expected in DAY]
    assert one_statement == portable == on_sqlite
    quiet = one_statement[0][11][1]
    assert quiet == Decision(False, "quiet_hours", datetime(2026, 12, 8, 0, 0, tzinfo=UTC))
    assert one_statement[2] == [(1, "2026-12-07", "*", 3), (1, "2026-12-07", "sms", 1), (1, "2026-12-07", "wechat", 2),
                                (2, "2026-12-07", "*", 2), (2, "2026-12-07", "sms", 1),
                                (2, "2026-12-07", "webhook", 1), (3, "2026-12-07", "*", 1),
                                (3, "2026-12-07", "webhook", 1)]


def test_a_send_on_postgresql_is_one_statement(migrated_postgres_url: str) -> None:
    engine = setup(migrated_postgres_url, n_campaigns=3)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for campaign, at in ((1, NOON), (2, NOON), (3, NOON + timedelta(hours=10))):
        store.reserve(engine, ContactPolicy(), Send(1, campaign, "sms", "Asia/Shanghai"), at, everything)
    assert [r.split()[0] for r in statements] == ["WITH"] * 3
    store.mark(engine, 1, "sent")
    assert len(statements) == 4
    while OPEN:
        OPEN.pop().dispose()
