"""``keliu pos import`` on real SQLite and PostgreSQL: duplicates and malformed rows, refunds of unknown sales,
idempotent re-imports, XLSX, strict mode, member links, and nothing half-imported when the import fails."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marketing.store import pos_import
from marketing.store.models import pos_imports, sales
from portal.store.marketing_members import PortalMembers
from tests.marketing.conftest import MEMBER_YES, NOW, tcoupon, toffer

pytestmark = pytest.mark.integration

FILE = """txn_id,ts,amount,kind,refund_of,phone,coupon_code
T1,2026-12-06 10:00:00,128.50,sale,,13812345678,
T2,2026-12-06T10:00:00+08:00,30,sale,,,
T2,2026-12-06T10:00:00+08:00,30,sale,,,
T3,not a time,3,sale,,,
R1,2026-12-06 11:00,8.50,refund,T1,,
R2,2026-12-06 11:00,1.00,refund,NOPE,,
T4,2026-12-06 10:00,1,sale,,,
T4,2026-12-06 10:00,2,sale,,,
R3,2026-12-06 11:00,99.00,refund,T2,,
T5,2026-12-06 12:00,-5,sale,,,
"""


def rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(sales.c.txn_id, sales.c.kind, sales.c.amount_cents, sales.c.member_id, sales.c.match)
            .order_by(sales.c.txn_id)).all()]


def run(engine: Engine, path: Path, **kw: object) -> tuple[pos_import.ImportReport, list[pos_import.Rejected]]:
    rejected: list[pos_import.Rejected] = []
    rep = pos_import.import_file(engine, path, "s1", NOW, directory=PortalMembers(), on_reject=rejected.append,
                                 **kw)  # type: ignore[arg-type]
    return rep, rejected


def test_import_report_and_idempotent_reimport(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "pos.csv"
    f.write_text(FILE, encoding="utf-8")
    rep, rejected = run(engine, f)
    assert (rep.rows_read, rep.rows_new, rep.rows_duplicate, rep.rows_rejected) == (10, 3, 1, 6)
    assert (rep.refunds_linked, rep.members_linked) == (1, 1)
    assert sorted((r.line, r.field) for r in rejected) == [
        (5, "ts"), (7, "refund_of"), (8, "txn_id"), (9, "txn_id"), (10, "amount"), (11, "amount")]
    assert rows(engine) == [("R1", "refund", 850, None, None), ("T1", "sale", 12850, MEMBER_YES, "phone"),
                            ("T2", "sale", 3000, None, None)]
    with engine.connect() as conn:
        refund = conn.execute(sa.select(sales.c.refund_of_id).where(sales.c.txn_id == "R1")).scalar()
        sale = conn.execute(sa.select(sales.c.id).where(sales.c.txn_id == "T1")).scalar()
    assert refund == sale
    again, _ = run(engine, f)
    assert (again.rows_new, again.rows_duplicate, again.rows_rejected) == (0, 4, 6)
    assert len(rows(engine)) == 3
    # the same txn id with other content in a later file is refused, not overwritten
    g = tmp_path / "later.csv"
    g.write_text("txn_id,ts,amount\nT1,2026-12-06 10:00:00,1.00\nT6,2026-12-07 10:00,2\n", encoding="utf-8")
    rep, rejected = run(engine, g)
    assert (rep.rows_new, rep.rows_rejected) == (1, 1) and rejected[0].line == 2
    assert ("T1", "sale", 12850, MEMBER_YES, "phone") in rows(engine)


def test_refund_of_a_sale_from_an_earlier_file(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("txn_id,ts,amount\nT1,2026-12-06 10:00,10\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("txn_id,ts,amount,kind,refund_of\nR1,2026-12-07 10:00,10,refund,T1\n",
                                    encoding="utf-8")
    run(engine, tmp_path / "a.csv")
    rep, rejected = run(engine, tmp_path / "b.csv")
    assert (rep.rows_new, rep.refunds_linked, rejected) == (1, 1, [])


def test_coupon_code_links_the_member(engine: Engine, tmp_path: Path) -> None:
    code = tcoupon(engine, toffer(engine))
    f = tmp_path / "c.csv"
    f.write_text(f"txn_id,ts,amount,coupon_code\nT1,2026-12-06 10:00,60,{code.lower()}\n", encoding="utf-8")
    rep, _ = run(engine, f)
    assert rep.members_linked == 1
    assert rows(engine) == [("T1", "sale", 6000, MEMBER_YES, "coupon")]


def test_strict_imports_nothing_when_a_row_is_rejected(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "pos.csv"
    f.write_text(FILE, encoding="utf-8")
    with pytest.raises(pos_import.ImportFailed):
        run(engine, f, strict=True)
    assert rows(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pos_imports)).scalar() == 0


def test_a_failure_mid_import_leaves_nothing(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "pos.csv"
    f.write_text("txn_id,ts,amount\n" + "".join(f"T{i},2026-12-06 10:00,1\n" for i in range(2000)),
                 encoding="utf-8")
    calls = []

    def explode(r: pos_import.Rejected) -> None:
        calls.append(r)
        raise RuntimeError("the disk is full")

    f.write_text(f.read_text() + "BAD,never,1\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        pos_import.import_file(engine, f, "s1", NOW, on_reject=explode)
    assert calls and rows(engine) == []


def test_xlsx(engine: Engine, tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["交易号", "时间", "金额", "类型", "原交易号"])
    from datetime import datetime

    ws.append(["T1", datetime(2026, 12, 6, 23, 59), 88.8, "销售", None])
    ws.append([1002, "2026-12-07 00:01", 10, "销售", None])
    ws.append(["R1", "2026-12-07 09:00", 8.8, "退款", "T1"])
    ws.append([None, None, None, None, None])
    f = tmp_path / "pos.xlsx"
    wb.save(f)
    rep, rejected = run(engine, f)
    assert (rep.rows_new, rep.refunds_linked, rejected) == (3, 1, [])
    assert [r[:3] for r in rows(engine)] == [("1002", "sale", 1000), ("R1", "refund", 880), ("T1", "sale", 8880)]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"), (b"foo,bar\n1,2\n", "header"), (b"PK\x03\x04garbage", None),
])
def test_unusable_files(engine: Engine, tmp_path: Path, content: bytes, message: str | None) -> None:
    f = tmp_path / ("bad.xlsx" if content.startswith(b"PK") else "bad.csv")
    f.write_bytes(content)
    with pytest.raises(pos_import.ImportFailed) as err:
        run(engine, f)
    if message:
        assert message in str(err.value)


def test_gb18030_export(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "gbk.csv"
    f.write_bytes("交易号,时间,金额,店员\nT1,2026-12-06 10:00,1,小王\n".encode("gb18030"))
    rep, rejected = run(engine, f)
    assert (rep.rows_new, rejected) == (1, [])


def test_server_and_python_parsers_agree(engine: Engine, tmp_path: Path) -> None:
    """On PostgreSQL plain rows are converted and hashed in SQL, others by Python: the same content stored either
    way is the same row (a re-import through the other parser finds only duplicates), and the values are
    Python's."""
    from zoneinfo import ZoneInfo

    from marketing.core.pos import header_map, parse_row

    lines = ["T1,2026-12-06 10:00:00,128.50,sale,,小王", "T2,2026-12-06T10:00:00+08:00,30,销售,,",
             "T3,2026-12-06T02:00:00.25Z,0.5,,,", "T4,2026-12-31 23:59,7,,,", "T5,2026-02-28T23:59:59.000001-05:30,1,,,",
             "R1,2026-12-07 09:00:00,8.5,退款,T1,小王", "T6, 2026-12-06 10:00,3,,,", "T7,2026-12-06 10:00,3 ,,,",
             "T8,2026-02-29 10:00,3,,,", "T9,2026-12-06 10:00,003.10,,,"]
    header = "txn_id,ts,amount,kind,refund_of,staff"
    plain = tmp_path / "plain.csv"
    plain.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    rep, rejected = run(engine, plain)
    assert [(r.line, r.field) for r in rejected] == [(10, "ts")]
    assert rep.rows_new == 9
    with engine.connect() as conn:
        stored = {r.txn_id: r for r in conn.execute(sa.select(sales)).all()}
        tz = ZoneInfo(conn.execute(sa.text("SELECT timezone FROM stores WHERE id = 's1'")).scalar_one())
    cols = header_map(header.split(","))
    for line in lines[:8] + lines[9:]:
        row = parse_row(line.split(","), cols, tz)
        got = stored[row.txn_id]
        assert (got.ts, got.amount_cents, got.kind, got.staff, got.row_hash) == (
            row.ts, row.amount_cents, row.kind, row.staff, row.content_hash(None)), line
    # the same rows quoted (Python's parser on every database): nothing new, nothing different
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(header + "\n" + "\n".join(",".join(f'"{c}"' for c in x.split(",")) for x in lines) + "\n",
                      encoding="utf-8")
    again, rejected = run(engine, quoted)
    assert (again.rows_new, again.rows_duplicate, [(r.line, r.field) for r in rejected]) == (0, 9, [(10, "ts")])


def test_local_times_around_a_change_of_utc_offset(engine: Engine, tmp_path: Path) -> None:
    """A store west of UTC with daylight saving time: local times without an offset (a plain one, one in the
    spring gap, one in the autumn overlap, one a day from a change) are stored as Python reads them."""
    from zoneinfo import ZoneInfo

    from marketing.core.pos import header_map, parse_row

    lines = ["W1,2026-07-01 12:00:00,1", "W2,2026-03-08 02:30:00,1", "W3,2026-11-01 01:30:00,1",
             "W4,2026-03-07 10:00:00,1", "W5,2026-01-15T08:00:00Z,1"]
    f = tmp_path / "west.csv"
    f.write_text("txn_id,ts,amount\n" + "\n".join(lines) + "\n", encoding="utf-8")
    rep = pos_import.import_file(engine, f, "w1", NOW)
    assert rep.rows_new == 5
    with engine.connect() as conn:
        stored = {r.txn_id: r for r in conn.execute(sa.select(sales)).all()}
    cols = header_map(["txn_id", "ts", "amount"])
    for line in lines:
        row = parse_row(line.split(","), cols, ZoneInfo("America/Los_Angeles"))
        assert (stored[row.txn_id].ts, stored[row.txn_id].row_hash) == (row.ts, row.content_hash(None)), line
