"""The access log's hash chain (pure): canonical bodies, links, and what :func:`check` finds."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keliu.accesslog import chain

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


def tchain(n: int) -> list[dict[str, Any]]:
    rows, prev = [], chain.GENESIS
    for seq in range(1, n + 1):
        rec: dict[str, Any] = {"seq": seq, "ts": T0 + timedelta(seconds=seq), "event": "login",
                               "store_id": "s1", "session_id": seq, "member_id": 7, "phone": f"+86138000000{seq:02}",
                               "mac": "02:00:00:00:00:01", "ip": "10.77.0.20", "detail": "sms"}
        rec["prev_hash"] = prev
        rec["hash"] = prev = chain.link(prev, seq, seq, 7, chain.body(rec))
        rows.append(rec)
    return rows


def test_a_whole_chain_checks() -> None:
    assert chain.check(tchain(5)) == (None, 5)


def test_body_is_unambiguous() -> None:
    # a value shifted into its neighbour, or a missing value and an empty one, give different bodies
    assert chain.body({"event": "ab", "store_id": "c"}) != chain.body({"event": "a", "store_id": "bc"})
    assert chain.body({"phone": None}) != chain.body({"phone": ""})


def test_timestamps_are_canonical_utc() -> None:
    local = T0.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert chain.stamp(local) == chain.stamp(T0) == "2026-11-18T10:00:00.000000+00:00"
    with pytest.raises(ValueError):
        chain.stamp(datetime(2026, 1, 1))


@pytest.mark.parametrize(("tamper", "bad_seq", "words"), [
    (lambda rows: rows[2].update(phone="+8613999999999"), 3, "changed"),
    (lambda rows: rows[2].update(ts=T0), 3, "changed"),
    (lambda rows: rows.pop(2), 3, "missing or out of order"),
    (lambda rows: rows.__setitem__(slice(1, 3), [rows[2], rows[1]]), 2, "out of order"),
    (lambda rows: rows.pop(0), 1, "missing"),
])
def test_check_names_the_first_bad_record(tamper: Any, bad_seq: int, words: str) -> None:
    rows = tchain(5)
    tamper(rows)
    bad, _ = chain.check(rows)
    assert bad is not None and bad.seq == bad_seq and words in str(bad)


def test_renumbered_records_break_the_links() -> None:
    rows = tchain(5)
    rows[1]["seq"], rows[2]["seq"] = 3, 2
    rows[1], rows[2] = rows[2], rows[1]
    bad, _ = chain.check(rows)
    assert bad is not None and bad.seq == 2


def test_a_chain_after_a_purge_starts_where_the_purge_says() -> None:
    rows = tchain(5)
    assert chain.check(rows[2:], 3, rows[1]["hash"]) == (None, 3)
    bad, _ = chain.check(rows[3:], 3, rows[1]["hash"])
    assert bad is not None and bad.seq == 3


def test_the_inline_body_of_verify_equals_the_canonical_body() -> None:
    for rec in tchain(3) + [{"ts": T0, "event": "purge", "detail": "{}", "port_lo": 1024, "port_hi": 1086,
                             "started_at": T0, "ended_at": T0 + timedelta(microseconds=1)}]:
        values = tuple(rec.get(k) for k in chain.BODY)
        assert chain._body_of(values) == chain.body(rec)
        as_text = tuple(chain.stamp(v) if isinstance(v, datetime) else v for v in values)
        assert chain._body_of(as_text) == chain.body(rec)
