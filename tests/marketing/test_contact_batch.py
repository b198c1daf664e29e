"""The contact policy decided a batch at a time (marketing.store.contact.reserve_many) against real databases: the
same answers and rows as the sends decided one by one, the caps exact when two workers' batches race for one
member, consent read at the batch's moment (a withdrawal committed a moment before is seen), and a run's claims
checked again at the channel call (marketing.execution.claim → deliver)."""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from marketing import execution
from marketing.channels.webhook import WebhookChannel
from marketing.core.contact import PURPOSES, ContactPolicy, Decision, Send
from marketing.store import contact as store
from marketing.store.campaigns import campaign_sends, campaigns, contact_counts
from portal.store.marketing_members import PortalMembers
from tests.marketing.campaign_kit import consenting_members
from tests.marketing.conftest import NOW
from tests.marketing.receivers import WebhookReceiver
from tests.marketing.test_campaign_execution import deps, tcampaign
from tests.marketing.test_contact_store import OPEN, setup

pytestmark = pytest.mark.integration

NOON = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NIGHT = NOON + timedelta(hours=10)  # 22:00 in Shanghai
TZ = "Asia/Shanghai"
CAPS = ContactPolicy(daily_cap=3, channel_caps={"sms": 1, "wechat": 2})
SEND = Decision(True)
Consents = Mapping[int, tuple[frozenset[str], frozenset[str]]]


def readers(refused_wechat: Sequence[int] = (), no_sms: Sequence[int] = ()) -> tuple[
        store.ConsentsReader, store.ConsentReader]:
    """The batch's reader and the one-send reader over the same made-up consents."""
    def one(conn: Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
        granted = frozenset(PURPOSES) - ({"sms_marketing"} if member_id in no_sms else set())
        return granted, frozenset({"wechat"}) if member_id in refused_wechat else frozenset()

    def many(conn: Connection, member_ids: Sequence[int]) -> Consents:
        return {m: one(conn, m) for m in member_ids}

    return many, one


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.getfixturevalue("postgres_url" if request.param == "postgresql" else "sqlite_url"))
    while OPEN:
        OPEN.pop().dispose()


def rows(engine: Engine) -> tuple[list[tuple[object, ...]], dict[tuple[int, str], int]]:
    s, t = campaign_sends, contact_counts
    with engine.connect() as conn:
        sends = conn.execute(sa.select(s.c.campaign_id, s.c.step, s.c.member_id, s.c.channel, s.c.status, s.c.reason,
                                       s.c.ts).order_by(s.c.campaign_id, s.c.step, s.c.member_id)).all()
        # a count the batch locked for a send that did not go stays at 0: the same as no row
        counts = {(int(m), str(c)): int(n) for m, c, n in conn.execute(sa.select(t.c.member_id, t.c.channel, t.c.n))
                  if n}
    return [tuple(r) for r in sends], counts


#: one batch: member 1 wanted by five campaigns on three channels (caps 3 a day, SMS 1, WeChat 2), a send twice,
#: member 2 refused WeChat, member 3 never consented to SMS marketing, member 4 in the holdout
BATCH = [
    store.Planned(Send(1, 1, "sms", TZ)),
    store.Planned(Send(1, 2, "sms", TZ)),  # channel cap
    store.Planned(Send(1, 3, "wechat", TZ)),
    store.Planned(Send(1, 1, "sms", TZ)),  # the same send again: a duplicate, counted once
    store.Planned(Send(1, 4, "webhook", TZ)),
    store.Planned(Send(1, 5, "webhook", TZ)),  # daily cap
    store.Planned(Send(1, 6, "splash", TZ)),  # the success page: no cap
    store.Planned(Send(2, 1, "wechat", TZ)),  # withdrawn
    store.Planned(Send(2, 2, "sms", TZ)),
    store.Planned(Send(3, 1, "sms", TZ)),  # no consent
    store.Planned(Send(4, 1, "sms", TZ), control=True),
    store.Planned(Send(4, 2, "sms", TZ)),
    store.Planned(Send(4, 3, "sms", TZ), control=True),  # the holdout meets the caps too, and counts nothing
]
EXPECTED = [("reserved", None), ("suppressed", "channel_cap"), ("reserved", None), ("duplicate", "duplicate"),
            ("reserved", None), ("suppressed", "daily_cap"), ("reserved", None), ("suppressed", "withdrawn"),
            ("reserved", None), ("suppressed", "no_consent:sms_marketing"), ("control", None), ("reserved", None),
            ("suppressed", "channel_cap")]


def test_a_batch_is_decided_as_its_sends_one_by_one(url: str, second_postgres_url: str) -> None:
    many, one = readers(refused_wechat=[2], no_sms=[3])
    batched = setup(url, n_campaigns=6, n_members=4)
    answers = store.reserve_many(batched, CAPS, BATCH, NOON, many)
    assert [(r.status, r.decision.reason) for r in answers] == EXPECTED
    assert [r.send_id is None for r in answers] == [s == "duplicate" for s, _ in EXPECTED]
    # the same sends one by one, through the one-send path, on another database
    single = setup(second_postgres_url, n_campaigns=6, n_members=4)
    alone = [store.reserve(single, CAPS, p.send, NOON, one, step=p.step, control=p.control) for p in BATCH]
    assert [(r.status, r.decision) for r in answers] == [(r.status, r.decision) for r in alone]
    assert rows(batched) == rows(single)
    assert rows(batched)[1] == {(1, "*"): 3, (1, "sms"): 1, (1, "wechat"): 1, (1, "webhook"): 1, (2, "*"): 1,
                                (2, "sms"): 1, (4, "*"): 1, (4, "sms"): 1}
    # inside the quiet hours: every push suppressed with the instant it may go, nothing counted; the page goes
    night = store.reserve_many(batched, CAPS, [store.Planned(Send(2, 3, "webhook", TZ)),
                                               store.Planned(Send(3, 3, "splash", TZ))], NIGHT, many)
    assert [(r.status, r.decision) for r in night] == [
        ("suppressed", Decision(False, "quiet_hours", datetime(2026, 12, 8, 0, 0, tzinfo=UTC))), ("reserved", SEND)]
    again = store.reserve_many(batched, CAPS, BATCH[:3], NOON, many)  # a retried batch: nothing twice
    assert [r.status for r in again] == ["duplicate"] * 3
    assert rows(batched)[1][(1, "*")] == 3


def test_a_cooldown_holds_inside_one_batch(url: str) -> None:
    many, _ = readers()
    engine = setup(url, n_campaigns=1, n_members=1)
    hour = timedelta(hours=1)
    planned = [store.Planned(Send(1, 1, "wechat", TZ, cooldown=hour), step=k) for k in range(3)]
    assert [(r.status, r.decision.reason) for r in store.reserve_many(engine, CAPS, planned, NOON, many)] == [
        ("reserved", None), ("suppressed", "cooldown"), ("suppressed", "cooldown")]
    later = [store.Planned(Send(1, 1, "wechat", TZ, cooldown=hour), step=k) for k in (3, 4)]
    assert [r.status for r in store.reserve_many(engine, CAPS, later, NOON + 2 * hour, many)] == [
        "reserved", "suppressed"]


def test_two_workers_batches_racing_for_one_member_meet_the_caps_exactly(postgres_url: str) -> None:
    """Two threads (one connection each) start their batches at one barrier, round after round: the same member in
    every send, each worker's campaigns, some sends in both batches (the same claim), and a third worker sending
    one at a time. Every claim is recorded once, and the member gets exactly the day's cap."""
    engine = setup(postgres_url, n_campaigns=40, n_members=2)
    many, one = readers()
    policy = ContactPolicy(daily_cap=3, channel_caps={"sms": 3, "wechat": 3, "webhook": 3})
    channels = ("sms", "wechat", "webhook")
    answers: dict[str, list[store.Reservation]] = {"a": [], "b": [], "c": []}
    for day in range(6):  # a round a day: the counts start at 0 each time
        at = NOON + timedelta(days=day)
        # campaigns 1-16 for a, 17-32 for b, 33-40 both (the same sends: one claim each)
        batch_a = [store.Planned(Send(1, c, channels[c % 3], TZ), step=day) for c in (*range(1, 17), *range(33, 41))]
        batch_b = [store.Planned(Send(1, c, channels[c % 3], TZ), step=day) for c in (*range(17, 33), *range(33, 41))]
        barrier = threading.Barrier(3)

        def run(name: str, planned: list[store.Planned], at: datetime = at,
                barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            if name == "c":  # the one-send path beside the batches, on member 1's other sends
                answers[name] += [store.reserve(engine, policy, p.send, at, one, step=p.step) for p in planned]
            else:
                answers[name] += store.reserve_many(engine, policy, planned, at, many)

        single = [store.Planned(Send(1, c, channels[c % 3], TZ), step=100 + day) for c in range(1, 9)]
        threads = [threading.Thread(target=run, args=a) for a in (("a", batch_a), ("b", batch_b), ("c", single))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)  # no deadlock between batches and single sends
    s = campaign_sends
    with engine.connect() as conn:
        per_day = conn.execute(sa.select(s.c.ts, sa.func.count()).where(s.c.status == "reserved").group_by(s.c.ts)
                               ).all()
        recorded = conn.execute(sa.select(sa.func.count()).select_from(s)).scalar()
        counts = conn.execute(sa.select(contact_counts.c.n).where(contact_counts.c.channel == "*")).scalars().all()
    assert sorted(n for _, n in per_day) == [3] * 6 and counts == [3] * 6
    assert recorded == 6 * (32 + 8 + 8)  # every claim once: the shared ones recorded by one of the two
    both = [r for r in answers["a"] + answers["b"] if r.status != "duplicate"]
    assert len(both) + len(answers["c"]) == recorded
    assert sum(r.status == "duplicate" for r in answers["a"] + answers["b"]) == 6 * 8
    suppressed = {r.decision.reason for r in both + answers["c"] if r.status == "suppressed"}
    assert suppressed == {"daily_cap"}


def test_a_withdrawal_committed_before_the_batch_is_seen_by_it(postgres_url: str) -> None:
    """The real reader (the portal's consents table) inside the batch's transaction: a member who withdrew their
    SMS consent a moment before is suppressed, the others in the batch go, in one statement for all of them."""
    engine = setup(postgres_url, n_campaigns=1, n_members=4)
    consents = sa.table("consents", sa.column("member_id"), sa.column("kind"), sa.column("version"),
                        sa.column("granted"), sa.column("ts"), sa.column("store_id"), sa.column("lang"))
    with engine.begin() as conn:
        conn.execute(sa.insert(consents), [{"member_id": m, "kind": "marketing", "version": "v1", "granted": True,
                                            "ts": NOON - timedelta(days=1), "store_id": "s1", "lang": "zh-CN"}
                                           for m in range(1, 5)])
    with engine.begin() as conn:  # member 3 replied "R" a second ago
        PortalMembers().withdraw(conn, 3, "sms_marketing", NOON - timedelta(seconds=1), "sms_reply")
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    answers = store.reserve_many(engine, CAPS, [store.Planned(Send(m, 1, "sms", TZ)) for m in range(1, 5)], NOON,
                                 PortalMembers().consents_of_many)
    assert [(r.status, r.decision.reason) for r in answers] == [
        ("reserved", None), ("reserved", None), ("suppressed", "withdrawn"), ("reserved", None)]
    assert sum("consents" in s for s in statements) == 1  # the batch's consents in one statement
    assert len(statements) <= 5  # consents, claimed, counts, locks, record: whatever the batch's size


def test_a_batch_claimed_ahead_is_checked_again_at_the_channel_call(engine: Engine) -> None:
    """A run claims its members in batches, then each send goes at its channel's pace: a member who withdrew
    between the claim and the call gets nothing (recorded with the reason), the others get one message each."""
    old = NOW - timedelta(days=40)
    consenting_members(engine, range(10, 16), old)
    at = NOW - timedelta(hours=6)  # 12:00 in Shanghai
    with WebhookReceiver(clock=lambda: at.timestamp()) as rx:
        cid = tcampaign(engine, trigger="lapsed", channel="webhook", params={"lapsed_days": 30},
                        message={"text": "新品到了", "webhook_url": rx.url})
        with engine.connect() as conn:
            rx.secrets[cid] = conn.execute(sa.select(campaigns.c.webhook_secret)
                                           .where(campaigns.c.id == cid)).scalar_one()
        d = deps(engine, webhook=WebhookChannel(timeout_s=5))
        due = execution.campaign_sends_due(engine, cid, at, d.policy)
        claimed = execution.claim(d, cid, due, at, batch=4)  # two batches
        assert [r.status for r in claimed] == ["reserved"] * 6
        assert [r.status for r in execution.claim(d, cid, due, at, batch=4)] == ["duplicate"] * 6
        with engine.begin() as conn:
            PortalMembers().withdraw(conn, 12, "marketing", at + timedelta(seconds=1), "member_page")
        results = {m: execution.deliver(d, cid, m, step, at + timedelta(seconds=2)) for m, step in due}
    assert results[12] == execution.Result("suppressed", "no_consent:marketing")
    assert {m: r.status for m, r in results.items() if m != 12} == {m: "sent" for m in (10, 11, 13, 14, 15)}
    assert sorted(v["member_id"] for v in rx.delivered.values()) == [10, 11, 13, 14, 15]
    assert execution.counts(engine, cid) == {"status": {"sent": 5, "suppressed": 1},
                                             "suppressed": {"no_consent:marketing": 1}}
