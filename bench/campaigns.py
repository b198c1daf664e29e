"""Campaign figures (issue 16): trigger evaluation, sends through the contact policy, and lift's interval coverage.

    python bench/campaigns.py [--members 1000000] [--sends 8000] [--workers 4] [--campaigns 200] [--batch 100]

- ``evaluate_members_per_s``: a lapsed-members trigger over ``--members`` members on PostgreSQL (one INSERT … SELECT
  with the holdout's arm computed in SQL; marketing.store.audience), members per second of the whole run;
- ``send_rps``: sends decided, counted and recorded through the contact policy by ``--workers`` processes at once,
  in batches of ``--batch`` (marketing.store.contact.reserve_many, what a campaign run uses: one transaction a
  batch), aimed at few members so that they collide; half the batches fall inside the quiet hours.
  ``one_by_one_send_rps``: the same load one send a transaction (marketing.store.contact.reserve, what an event
  trigger's single send uses). ``cap_violations``: member-days with more pushes reserved than the cap;
  ``quiet_hour_violations``: reserved pushes inside the store's quiet hours — both read back from ``campaign_sends``
  after the run, an independent check of what was recorded. The clock runs from the moment every worker process
  has started and connected (process start-up is not a send) to the last one's end. The channel call is not part
  of a send here (the channels are rate-limited to tens a second anyway); ``statements_per_send`` (and the
  others'): SQL statements a send costs in the same mix, counted in one process (BEGIN and COMMIT not included) —
  the load-independent figure;
- the baseline in the same run: the same load one send a transaction through a cap enforced by read-then-write
  (read the counts, decide, then add one), and the violations it lets through (``baseline_cap_violations``);
- ``lift_ci_coverage``: over ``--campaigns`` simulated campaigns with a known true effect (visit rate 8 % → 10 %,
  5,000 members, 10 % holdout), the share whose 95 % interval of the lift covers the truth; the same for revenue
  per member (log-normal tickets), ``revenue_ci_coverage``.

The load average is printed first and reported as ``loadavg_1m`` (the machine may be shared). The last line is one
JSON object.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keliu import db
from keliu.tenants import MALLS, STORES
from marketing.core import contact as policy_core
from marketing.core import lift
from marketing.store import audience, contact
from marketing.store.campaigns import campaign_sends, campaigns, contact_counts

PG_ADMIN = os.environ.get("KELIU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TZ = "Asia/Shanghai"
NOON = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NIGHT = NOON + timedelta(hours=10)  # 22:00 in Shanghai
CAP = 3


def fresh_database() -> str:
    name = f"keliu_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    admin.dispose()


def seed(url: str, members: int, n_campaigns: int) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(MALLS).values(id="m1", name="M"))
        conn.execute(sa.insert(STORES).values(id="s1", mall_id="m1", name="S", timezone=TZ))
        # members seen over the last 90 days; generated in the database (a bench fixture, not product code)
        conn.exec_driver_sql(
            "INSERT INTO members (id, created_at, first_store_id, last_seen_at) "
            "SELECT g, now(), 's1', now() - mod(g, 90) * interval '1 day' FROM generate_series(1, %(n)s) g",
            {"n": members})
        conn.execute(sa.insert(campaigns), [
            {"id": c, "store_id": "s1", "name": f"c{c}", "trigger": "lapsed", "channel": "sms",
             "category": "member_benefit", "status": "approved", "control_share": 0.1, "salt": f"salt{c}",
             "cooldown_s": 0, "window_days": 7, "created_at": NOON} for c in range(1, n_campaigns + 1)])
    engine.dispose()


def evaluate(url: str, members: int) -> dict[str, float]:
    engine = db.make_engine(url)
    t0 = time.perf_counter()
    counts = audience.enroll_lapsed(engine, 1, "salt1", 0.1, datetime.now(UTC) - timedelta(days=30),
                                    datetime.now(UTC))
    elapsed = time.perf_counter() - t0
    engine.dispose()
    enrolled = counts["treatment"] + counts["control"]
    print(f"lapsed trigger: {members:,} members evaluated, {enrolled:,} enrolled "
          f"({counts['control']:,} control) in {elapsed:.2f} s")
    return {"evaluate_members_per_s": round(members / elapsed), "evaluate_s": round(elapsed, 3),
            "enrolled": enrolled, "control_share": round(counts["control"] / max(enrolled, 1), 4)}


def everything(conn: sa.Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(policy_core.PURPOSES), frozenset()


def naive_reserve(engine: sa.Engine, policy: policy_core.ContactPolicy, send: policy_core.Send,
                  now: datetime, step: int) -> str:
    """The baseline: read the counts, decide, then add one without a condition (read-then-write)."""
    day = policy_core.local_day(now, send.store_timezone).isoformat()
    t = contact_counts
    with engine.begin() as conn:
        counts = {r.channel: r.n for r in conn.execute(
            sa.select(t.c.channel, t.c.n).where(t.c.member_id == send.member_id, t.c.day == day))}
        facts = policy_core.MemberFacts(frozenset(policy_core.PURPOSES), sent_today=counts.pop("*", 0),
                                        sent_today_by_channel=counts)
        decision = policy_core.decide(policy, send, facts, now)
        status = "reserved" if decision.send else "suppressed"
        conn.execute(sa.insert(campaign_sends).values(campaign_id=send.campaign_id, step=step, member_id=send.member_id,
                                                      channel=send.channel, status=status, reason=decision.reason,
                                                      ts=now))
        if decision.send:
            for channel in ("*", send.channel):
                stmt = db.dialect_insert(conn, t).values(member_id=send.member_id, day=day, channel=channel, n=1)
                conn.execute(stmt.on_conflict_do_update(index_elements=[t.c.member_id, t.c.day, t.c.channel],
                                                        set_={"n": t.c.n + 1}))
    return status


#: the campaign ids of each run's sends (each run its own campaigns, the counts emptied before it)
OFFSET = {"batch": 0, "naive": 1000, "one": 2000}


def everyone(conn: sa.Connection, member_ids: Sequence[int]) -> dict[int, tuple[frozenset[str], frozenset[str]]]:
    return {m: (frozenset(policy_core.PURPOSES), frozenset()) for m in member_ids}


def planned_sends(index: int, workers: int, sends: int, n_campaigns: int, mode: str, members: tuple[int, int],
                  batch: int) -> Iterator[tuple[datetime, list[contact.Planned]]]:
    """A worker's share of the load, in batches of ``batch`` sends at one instant (a campaign run decides its batch
    at one instant), alternately at noon and inside the quiet hours; one send a batch for the one-by-one runs,
    alternating likewise. ``members``: the range the members are drawn from (few: they collide)."""
    rng = np.random.default_rng(index)
    ks = list(range(index, sends, workers))
    size = batch if mode == "batch" else 1
    for b, start in enumerate(range(0, len(ks), size)):
        now = NIGHT if b % 2 else NOON
        out = []
        for k in ks[start:start + size]:
            member = int(rng.integers(*members))
            campaign = (k % n_campaigns) + 1 + OFFSET[mode]
            channel = ("sms", "wechat", "webhook")[k % 3]
            out.append(contact.Planned(policy_core.Send(member, campaign, channel, TZ), step=k))  # type: ignore[arg-type]
        yield now, out


def run_sends(engine: sa.Engine, mode: str, now: datetime, sends: list[contact.Planned]) -> None:
    policy = policy_core.ContactPolicy(daily_cap=CAP, channel_caps={"sms": CAP, "wechat": CAP, "webhook": CAP})
    if mode == "batch":
        contact.reserve_many(engine, policy, sends, now, everyone)
    elif mode == "one":
        for p in sends:
            contact.reserve(engine, policy, p.send, now, everything, step=p.step)
    else:
        for p in sends:
            naive_reserve(engine, policy, p.send, now, p.step)


def worker(args: tuple[str, int, int, int, int, str, int], ready: Any, done_q: Any) -> None:
    url, index, workers, sends, n_campaigns, mode, batch = args
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    engine.connect().close()  # connected before the clock starts
    work = list(planned_sends(index, workers, sends, n_campaigns, mode, (1, 51), batch))
    ready.wait()  # every worker started, imported and connected: the clock starts
    done = 0
    # 50 members: every one is wanted by many campaigns at once
    for now, planned in work:
        run_sends(engine, mode, now, planned)
        done += len(planned)
    done_q.put(done)
    engine.dispose()


def timed(args: list[tuple[str, int, int, int, int, str, int]]) -> tuple[int, float]:
    """Run one worker process per item at once; the sends done and the seconds from the moment all of them were
    ready (started, imported, connected: not part of a send) to the moment the last one finished."""
    ctx = mp.get_context("spawn")
    ready, done_q = ctx.Barrier(len(args) + 1), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(a, ready, done_q)) for a in args]
    for p in procs:
        p.start()
    ready.wait()
    t0 = time.perf_counter()
    total = sum(done_q.get() for _ in procs)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a worker failed ({p.exitcode})")
    return total, elapsed


LABEL = {"batch": "contact policy, in batches", "one": "contact policy, one send at a time",
         "naive": "read-then-write (baseline)"}
PREFIX = {"batch": "", "one": "one_by_one_", "naive": "baseline_"}


def sends_bench(url: str, sends: int, workers: int, n_campaigns: int, mode: str, batch: int) -> dict[str, float]:
    engine = db.make_engine(url)
    with engine.begin() as conn:  # each run its own campaigns (the same, under other ids), today's counts at 0
        conn.execute(sa.delete(contact_counts))
        if OFFSET[mode]:
            conn.execute(sa.insert(campaigns), [
                {"id": OFFSET[mode] + c, "store_id": "s1", "name": f"{mode}{c}", "trigger": "lapsed",
                 "channel": "sms", "category": "member_benefit", "status": "approved", "control_share": 0.1,
                 "salt": f"{mode}{c}", "cooldown_s": 0, "window_days": 7, "created_at": NOON}
                for c in range(1, n_campaigns + 1)])
    engine.dispose()
    total, elapsed = timed([(url, i, workers, sends, n_campaigns, mode, batch) for i in range(workers)])
    # the independent check: what was recorded, read back from campaign_sends (not the code's own counters)
    engine = db.make_engine(url)
    s = campaign_sends
    ids = s.c.campaign_id.between(OFFSET[mode], OFFSET[mode] + 999)
    with engine.connect() as conn:
        per_member = conn.execute(sa.select(s.c.member_id, sa.func.count()).where(
            ids, s.c.status == "reserved", s.c.ts == NOON).group_by(s.c.member_id)).all()
        night = conn.execute(sa.select(sa.func.count()).select_from(s).where(
            ids, s.c.status == "reserved", s.c.ts == NIGHT)).scalar()
        reserved = conn.execute(sa.select(sa.func.count()).select_from(s).where(ids, s.c.status == "reserved")).scalar()
        recorded = conn.execute(sa.select(sa.func.count()).select_from(s).where(ids)).scalar()
    engine.dispose()
    over = sum(n - CAP for _, n in per_member if n > CAP)
    print(f"{LABEL[mode]}: {total:,} sends by {workers} workers in {elapsed:.2f} s = {total / elapsed:,.0f}/s; "
          f"{recorded} recorded, {reserved} reserved, {over} over the cap, {night} inside the quiet hours")
    if recorded != total:
        raise SystemExit(f"{LABEL[mode]}: {total} sends but {recorded} rows recorded")
    prefix = PREFIX[mode]
    return {f"{prefix}send_rps": round(total / elapsed), f"{prefix}cap_violations": over,
            f"{prefix}quiet_hour_violations": int(night or 0)}


def statements_per_send(url: str, sends: int, n_campaigns: int, mode: str, batch: int) -> dict[str, float]:
    """Statements per send in the timed runs' mix, counted in this process on members the timed runs left alone."""
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    with engine.begin() as conn:  # each mix from counts at 0
        conn.execute(sa.delete(contact_counts))
    seen = {"statements": 0, "transactions": 0}
    sa.event.listen(engine, "before_cursor_execute", lambda *_: seen.__setitem__("statements", seen["statements"] + 1))
    sa.event.listen(engine, "commit", lambda *_: seen.__setitem__("transactions", seen["transactions"] + 1))
    for now, planned in planned_sends(100_000, 1, 100_000 + sends, n_campaigns, mode, (51, 101), batch):
        run_sends(engine, mode, now, planned)
    engine.dispose()
    print(f"{LABEL[mode]}: {seen['statements'] / sends:.2f} statements per send ({seen['transactions']} committed "
          f"transactions for {sends} sends)")
    return {f"{PREFIX[mode]}statements_per_send": round(seen["statements"] / sends, 3)}


def coverage(campaigns_n: int) -> dict[str, float]:
    rng = np.random.default_rng(2026)
    covered_visits = covered_revenue = 0
    true_lift = 0.25
    for _ in range(campaigns_n):
        n = 5_000
        control = rng.random(n) < 0.10
        visited = (rng.random(n) < np.where(control, 0.08, 0.08 * (1 + true_lift))).astype(float)
        # revenue: the visitors who buy (40 %) spend a log-normal ticket (median ~¥120)
        bought = visited * (rng.random(n) < 0.4)
        revenue = bought * rng.lognormal(np.log(12_000), 0.6, n)
        report = lift.analyse(lift.Outcomes(visited[~control], bought[~control], revenue[~control]),
                              lift.Outcomes(visited[control], bought[control], revenue[control]), cost_cents=1.0)
        covered_visits += report.visit_rate.lift.covers(true_lift)
        covered_revenue += report.revenue_per_member.lift.covers(true_lift)
    print(f"lift: {campaigns_n} simulated campaigns, true lift {true_lift:.0%}: the 95 % interval covered it "
          f"{covered_visits} times (visit rate), {covered_revenue} times (revenue per member)")
    return {"lift_ci_coverage": round(covered_visits / campaigns_n, 3),
            "revenue_ci_coverage": round(covered_revenue / campaigns_n, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--sends", type=int, default=8_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100, help="sends decided per transaction (send_rps)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out: dict[str, float] = {"loadavg_1m": round(load[0], 2)}
    url = fresh_database()
    try:
        seed(url, args.members, 100)
        out.update(evaluate(url, args.members))
        for mode in ("batch", "one", "naive"):
            out.update(sends_bench(url, args.sends, args.workers, 100, mode, args.batch))
        for mode in ("batch", "one", "naive"):
            out.update(statements_per_send(url, 500, 100, mode, args.batch))
        out["batch"] = args.batch
    finally:
        drop_database(url)
    out.update(coverage(args.campaigns))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
