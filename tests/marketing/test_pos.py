"""POS rows (pure): the header set, amounts, times in the store's zone, kinds, refunds."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from marketing.core.pos import RowInvalid, header_map, parse_api_body, parse_cents, parse_row

SH = ZoneInfo("Asia/Shanghai")
COLS = header_map(["txn_id", "ts", "amount", "kind", "refund_of", "coupon_code", "phone", "staff"])


def test_header_in_chinese_with_bom_and_unknown_columns() -> None:
    cols = header_map(["\ufeff交易号", "时间", "金额", "备注", "类型"])
    assert cols == {"txn_id": 0, "ts": 1, "amount": 2, "kind": 4}


@pytest.mark.parametrize(("header", "field"), [
    (["ts", "amount"], "txn_id"), (["txn_id", "amount"], "ts"), (["txn_id", "ts"], "amount"),
    (["txn_id", "ts", "amount", "交易号"], "交易号"),
])
def test_bad_headers(header: list[str], field: str) -> None:
    with pytest.raises(RowInvalid) as err:
        header_map(header)
    assert err.value.field == field


@pytest.mark.parametrize(("text", "cents"), [("128.50", 12850), ("128.5", 12850), ("0", 0), ("3", 300),
                                             ("0.01", 1)])
def test_amounts(text: str, cents: int) -> None:
    assert parse_cents(text) == cents


@pytest.mark.parametrize("text", ["", "-1", "1.234", "1,000", "abc", "1e3", ".5"])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(RowInvalid):
        parse_cents(text)


def test_local_and_offset_times() -> None:
    a = parse_row(["T1", "2026-12-06 23:59:00", "1", "", "", "", "", ""], COLS, SH)
    b = parse_row(["T1", "2026-12-06T15:59:00Z", "1", "", "", "", "", ""], COLS, SH)
    assert a.ts == b.ts == datetime(2026, 12, 6, 15, 59, tzinfo=UTC)
    assert parse_row(["T2", datetime(2026, 12, 7, 0, 1), 2.5, "销售", "", "", "", ""], COLS, SH).ts == \
        datetime(2026, 12, 6, 16, 1, tzinfo=UTC)   # an XLSX date cell is local time


def test_refund_needs_its_sale_and_a_sale_names_none() -> None:
    r = parse_row(["R1", "2026-12-06 10:00", "5", "退款", "T1", "", "", ""], COLS, SH)
    assert (r.kind, r.refund_of) == ("refund", "T1")
    for cells in (["R1", "2026-12-06 10:00", "5", "refund", "", "", "", ""],
                  ["T1", "2026-12-06 10:00", "5", "sale", "T0", "", "", ""],
                  ["T1", "2026-12-06 10:00", "5", "void", "", "", "", ""],
                  ["", "2026-12-06 10:00", "5", "", "", "", "", ""],
                  ["T1", "yesterday", "5", "", "", "", "", ""]):
        with pytest.raises(RowInvalid):
            parse_row(cells, COLS, SH)


def test_short_rows_and_hash_leaves_the_phone_out() -> None:
    r = parse_row(["T1", "2026-12-06 10:00", "5"], COLS, SH)
    assert r.phone is None and r.kind == "sale"
    with_phone = parse_row(["T1", "2026-12-06 10:00", "5", "", "", "", "13812345678", ""], COLS, SH)
    assert with_phone.content_hash(None) == r.content_hash(None)
    assert with_phone.content_hash(7) != r.content_hash(None)


def test_api_body() -> None:
    r = parse_api_body({"txn_id": "T1", "ts": "2026-12-06T10:00:00+08:00", "amount_cents": 100}, SH)
    assert r.amount_cents == 100
    for body in ({"txn_id": "T1", "ts": "2026-12-06", "amount_cents": "100"},
                 {"txn_id": 5, "ts": "2026-12-06", "amount_cents": 100},
                 {"txn_id": "T1", "amount_cents": 100},
                 {"txn_id": "T1", "ts": "2026-12-06", "amount_cents": 100, "x": 1}, []):
        with pytest.raises(RowInvalid):
            parse_api_body(body, SH)
