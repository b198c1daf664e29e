"""Races on real SQLite and PostgreSQL: threads (each with its own connection) hitting one single-use code,
one idempotency key, one redemption's rollback, and redeem/rollback cycles against a budget and a per-member limit.
Whatever the interleaving, the ledger and the counters must agree."""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketing.store import coupons as store
from marketing.store.models import coupons, member_offers, offers, redemptions
from tests.marketing.conftest import NOW, tcoupon, toffer, tredeem

pytestmark = pytest.mark.integration
THREADS = 12


def race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released together; results (or the exception raised) in order."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - collected: the test asserts on every outcome
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def outcome(x: Any) -> str:
    if isinstance(x, store.Outcome):
        return "replay" if x.replayed else "ok"
    if isinstance(x, store.Refused):
        return x.reason
    return repr(x)


def test_one_single_use_code_many_tills(engine: Engine) -> None:
    code = tcoupon(engine, toffer(engine))
    for rnd in range(3):
        results = race(THREADS, lambda i, rnd=rnd: store.redeem(engine, tredeem(code, f"r{rnd}-{i}"), NOW))
        c = Counter(map(outcome, results))
        if rnd == 0:
            assert c == {"ok": 1, "already_redeemed": THREADS - 1}, c
        else:
            assert c == {"already_redeemed": THREADS}, c
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(redemptions)).scalar() == 1


def test_one_key_retried_concurrently_is_one_redemption(engine: Engine) -> None:
    code = tcoupon(engine, toffer(engine))
    results = race(THREADS, lambda i: store.redeem(engine, tredeem(code, "same-key"), NOW))
    c = Counter(map(outcome, results))
    assert c == {"ok": 1, "replay": THREADS - 1}, c
    assert len({r.id for r in results}) == 1


def test_one_rollback_many_tills(engine: Engine) -> None:
    code = tcoupon(engine, toffer(engine, budget_total_cents=100000))
    store.redeem(engine, tredeem(code, "orig"), NOW)
    results = race(THREADS, lambda i: store.rollback(engine, store.RollbackRequest("s1", "orig", f"rb{i}", "a"), NOW))
    c = Counter(map(outcome, results))
    assert c == {"ok": 1, "already_rolled_back": THREADS - 1}, c
    with engine.connect() as conn:
        assert conn.execute(sa.select(offers.c.spent_cents)).scalar() == 0
        assert conn.execute(sa.select(coupons.c.state)).scalar() == "issued"


def test_redeem_and_rollback_cycles_keep_the_counters_true(engine: Engine) -> None:
    """Half the threads redeem, half roll back whatever redemption is in force, for several rounds. Afterwards
    the coupon's state, the per-member counter and the spent budget equal what the ledger says."""
    offer = toffer(engine, budget_total_cents=10_000_000, budget_daily_cents=10_000_000)
    code = tcoupon(engine, offer)

    def work(i: int) -> list[str]:
        seen = []
        for n in range(6):
            if i % 2 == 0:
                try:
                    store.redeem(engine, tredeem(code, f"t{i}-{n}"), NOW)
                    seen.append("redeemed")
                except store.Refused as exc:
                    seen.append(exc.reason)
            else:
                with engine.connect() as conn:
                    rid = conn.execute(sa.select(coupons.c.redemption_id)).scalar()
                    key = None if rid is None else conn.execute(
                        sa.select(redemptions.c.idempotency_key).where(redemptions.c.id == rid)).scalar()
                if key is None:
                    seen.append("nothing")
                    continue
                try:
                    store.rollback(engine, store.RollbackRequest("s1", key, f"rb{i}-{n}", "a"), NOW)
                    seen.append("rolled_back")
                except store.Refused as exc:
                    seen.append(exc.reason)
        return seen

    results = race(8, work)
    assert all(isinstance(r, list) for r in results), results
    with engine.connect() as conn:
        kinds = Counter(conn.execute(sa.select(redemptions.c.kind)).scalars())
        in_force = kinds["redeem"] - kinds["rollback"]
        state = conn.execute(sa.select(coupons.c.state)).scalar()
        used = conn.execute(sa.select(member_offers.c.used)).scalar()
        spent = conn.execute(sa.select(offers.c.spent_cents)).scalar()
    assert in_force in (0, 1)
    assert state == ("redeemed" if in_force else "issued")
    assert used == in_force
    assert spent == 1000 * in_force
    assert kinds["redeem"] >= 1
