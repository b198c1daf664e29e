"""``keliu pos import FILE --store S``: a POS export (CSV or XLSX) into ``sales`` (an edge: files and SQL).

The file is streamed, never held: rows are parsed one by one (:func:`marketing.core.pos.parse_row`; XLSX through
openpyxl's read-only mode) and written in batches to a temporary staging table (PostgreSQL: ``COPY … FROM
STDIN``; SQLite: batched inserts), so memory does not grow with the file. Then, **in the same transaction**, SQL
decides over the whole file at once:

1. a ``txn_id`` repeated in the file with different content → every copy rejected; with the same content, the
   first kept and the rest counted as duplicates;
2. a ``txn_id`` the store already has → a duplicate if the content is the same (re-importing a file changes
   nothing: idempotent on (store, txn_id)), rejected if it differs;
3. sales are inserted; then refunds, each linked to its sale (in this file or an earlier one); a refund of an
   unknown sale, or larger than its sale, is rejected;
4. members are linked only deterministically (member QR, coupon holder, a member's phone).

Either the whole file's valid rows are stored with one ``pos_imports`` row, or (an error, a kill, ``strict`` with
any rejected row) nothing is: there is no half-imported file. Rejected rows are reported (line, column, reason)
to a callback as they are found, not collected.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu.db import TS
from marketing.core import codes
from marketing.core.pos import RowInvalid, SaleRow, header_map, parse_row
from marketing.errors import MarketingError
from marketing.members import MemberDirectory, MemberTokens
from marketing.store.coupons import zone_of_store
from marketing.store.models import coupons, pos_imports, sales
from marketing.store.sales import resolve_member

BATCH = 5000
STAGING = "pos_staging"

_stage_meta = sa.MetaData()
staging = sa.Table(
    STAGING, _stage_meta,
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("txn_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("ts", TS, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("refund_of", sa.String(64)),
    sa.Column("member_id", sa.Integer),
    sa.Column("match", sa.String(8)),
    sa.Column("coupon_code", sa.String(16)),
    sa.Column("staff", sa.String(80)),
    sa.Column("row_hash", sa.String(64), nullable=False),
    #: "new", "duplicate", "rejected"
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("reason", sa.String(120)),
    #: a refund's sale, once found
    sa.Column("sale_id", sa.Integer),
    sa.Column("sale_amount", sa.BigInteger),
    prefixes=["TEMPORARY"],
)
#: the columns a parsed row fills
COLS = [c.name for c in staging.columns][:13]


class ImportFailed(MarketingError):
    """The file cannot be imported at all (unreadable, no header, unknown store, or rejected rows with
    ``strict``); nothing was stored."""


@dataclass(frozen=True)
class Rejected:
    line: int
    field: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    import_id: int | None
    rows_read: int
    rows_new: int
    rows_duplicate: int
    rows_rejected: int
    refunds_linked: int
    members_linked: int


def read_rows(path: Path) -> Iterator[Sequence[object]]:
    """The rows of a CSV (UTF-8, BOM allowed; GB18030 as a fallback for Chinese Excel exports) or of the first
    sheet of an XLSX, header first, streamed."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises zipfile/KeyError/ValueError/... for a damaged file
            raise ImportFailed(f"{path.name}: not a readable XLSX file ({type(exc).__name__})") from exc
        try:
            yield from wb.worksheets[0].iter_rows(values_only=True)
        finally:
            wb.close()
        return
    encoding = "utf-8-sig"
    with path.open("rb") as raw:
        head = raw.read(65536)
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # a cut multi-byte character at the end of the sample is not a reason to switch
        if exc.start < len(head) - 4:
            encoding = "gb18030"
    with path.open(encoding=encoding, newline="") as f:
        try:
            yield from csv.reader(f)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportFailed(f"{path.name}: unreadable CSV ({exc})") from exc


def import_file(engine: Engine, path: Path, store_id: str, now: datetime, *,
                directory: MemberDirectory | None = None, tokens: MemberTokens | None = None,
                on_reject: Callable[[Rejected], None] | None = None, strict: bool = False) -> ImportReport:
    """Import one POS file for ``store_id`` (see the module docstring). ``on_reject`` is called for every
    rejected row; with ``strict`` any rejected row cancels the whole import (:class:`ImportFailed`)."""
    report = on_reject or (lambda _r: None)
    with engine.connect() as conn:
        zone = zone_of_store(conn, store_id)
    if zone is None:
        raise ImportFailed(f"--store: no store {store_id!r}")
    tz = zone[1]
    rows = read_rows(path)
    try:
        header = next(rows)
    except StopIteration:
        raise ImportFailed(f"{path.name}: empty file") from None
    try:
        cols = header_map(header)
    except RowInvalid as exc:
        raise ImportFailed(f"{path.name}: header: {exc}") from exc
    with engine.begin() as conn:
        _create_staging(conn)
        read, parse_rejects = _stage(conn, rows, cols, tz, now, directory, tokens, report)
        rep = _apply(conn, store_id, path.name, now, read, parse_rejects, report)
        _drop_staging(conn)
        if strict and rep.rows_rejected:
            raise ImportFailed(f"{rep.rows_rejected} rejected rows: nothing imported (strict)")
    return rep


def _create_staging(conn: Connection) -> None:
    _drop_staging(conn)
    staging.create(conn)


def _drop_staging(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGING}")


def _stage(conn: Connection, rows: Iterator[Sequence[object]], cols: dict[str, int], tz: ZoneInfo, now: datetime,
           directory: MemberDirectory | None, tokens: MemberTokens | None,
           report: Callable[[Rejected], None]) -> tuple[int, int]:
    """Parse and load every row into the staging table, a batch at a time (members are resolved between two
    batches' COPYs: the connection cannot query during a COPY); returns (rows read, rows rejected by parsing)."""
    batch: list[tuple[int, SaleRow]] = []
    read = rejected = 0
    phones: dict[str, int | None] = {}
    for line, cells in enumerate(rows, start=2):
        if not any(c not in (None, "") for c in cells):
            continue  # blank lines (Excel leaves them) are not rows
        read += 1
        try:
            batch.append((line, parse_row(cells, cols, tz)))
        except RowInvalid as exc:
            rejected += 1
            report(Rejected(line, exc.field, exc.reason))
            continue
        if len(batch) >= BATCH:
            _load(conn, batch, now, directory, tokens, phones)
            batch.clear()
    if batch:
        _load(conn, batch, now, directory, tokens, phones)
    return read, rejected


def _load(conn: Connection, batch: list[tuple[int, SaleRow]], now: datetime, directory: MemberDirectory | None,
          tokens: MemberTokens | None, phones: dict[str, int | None]) -> None:
    if directory is not None:
        # the batch's phone numbers in one query (the QR, when it verifies, still comes first)
        wanted = list({row.phone for _line, row in batch if row.phone and row.phone not in phones})
        if wanted:
            if len(phones) > 100_000:
                phones.clear()
            found = directory.members_by_phones(conn, wanted)
            phones.update({p: found.get(p) for p in wanted})
    values = []
    for line, row in batch:
        member_id: int | None = None
        how: str | None = None
        if row.member_qr and tokens is not None:
            # the coupon's holder is matched for the whole file at once, in SQL
            member_id, how = resolve_member(conn, replace(row, coupon_code=None, phone=None), now, None, tokens)
        if member_id is None and row.phone and phones.get(row.phone) is not None:
            member_id, how = phones[row.phone], "phone"
        code = None
        if row.coupon_code:
            try:
                code = codes.normalize(row.coupon_code)
            except codes.InvalidCode:
                code = None
        values.append((line, row.txn_id, row.kind, row.ts, row.amount_cents, row.refund_of, member_id, how, code,
                       row.staff, row.content_hash(member_id), "new", None))
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cur, cur.copy(f"COPY {STAGING} ({', '.join(COLS)}) FROM STDIN") as copy:
            for v in values:
                copy.write_row(v)
    else:
        conn.execute(sa.insert(staging), [dict(zip(COLS, v, strict=True)) for v in values])


def _apply(conn: Connection, store_id: str, file_name: str, now: datetime, read: int, parse_rejects: int,
           report: Callable[[Rejected], None]) -> ImportReport:
    st = staging
    x = conn.execute
    x(sa.text(f"CREATE INDEX ix_{STAGING}_txn ON {STAGING} (txn_id)"))
    if conn.dialect.name == "postgresql":
        x(sa.text(f"ANALYZE {STAGING}"))
    # 1. the same txn id twice in the file: different content → all rejected; same content → keep the first
    conflicting = (sa.select(st.c.txn_id).group_by(st.c.txn_id)
                   .having(sa.func.count(sa.distinct(st.c.row_hash)) > 1))
    x(sa.update(st).where(st.c.txn_id.in_(conflicting))
      .values(status="rejected", reason="txn_id:appears in the file with different content"))
    first = sa.select(sa.func.min(st.c.line)).group_by(st.c.txn_id).having(sa.func.count() > 1)
    repeated = sa.select(st.c.txn_id).group_by(st.c.txn_id).having(sa.func.count() > 1)
    x(sa.update(st).where(st.c.status == "new", st.c.txn_id.in_(repeated), st.c.line.not_in(first))
      .values(status="duplicate"))
    # 2. already imported: the same content is a duplicate, other content is refused
    known = sa.select(sales.c.id).where(sales.c.store_id == store_id, sales.c.txn_id == st.c.txn_id)
    x(sa.update(st).where(st.c.status == "new", known.where(sales.c.row_hash == st.c.row_hash).exists())
      .values(status="duplicate"))
    x(sa.update(st).where(st.c.status == "new", known.exists())
      .values(status="rejected", reason="txn_id:recorded before with different content"))
    # 4. the coupon's holder, where no earlier link matched
    holder = sa.select(coupons.c.member_id).where(coupons.c.code == st.c.coupon_code).scalar_subquery()
    x(sa.update(st).where(st.c.status == "new", st.c.member_id.is_(None), st.c.coupon_code.is_not(None),
                          holder.is_not(None)).values(member_id=holder, match="coupon"))
    imp = int(x(sa.insert(pos_imports).values(store_id=store_id, file_name=file_name[:255], ts=now, rows_read=read,
                                              rows_new=0, rows_duplicate=0, rows_rejected=0)
                .returning(pos_imports.c.id)).scalar_one())
    cols = ["txn_id", "kind", "ts", "amount_cents", "member_id", "match", "coupon_code", "staff", "row_hash"]
    # 3. sales, then refunds linked to their sale
    x(sales.insert().from_select(
        ["store_id", *cols, "import_id"],
        sa.select(sa.literal(store_id), *[st.c[c] for c in cols], sa.literal(imp))
        .where(st.c.status == "new", st.c.kind == "sale")))
    if conn.dialect.name == "postgresql":
        x(sa.text("ANALYZE sales"))  # its statistics predate this file's sales: the lookups below need the index
    sale = sa.select(sales.c.id).where(sales.c.store_id == store_id, sales.c.txn_id == st.c.refund_of,
                                       sales.c.kind == "sale")
    sale_amount = sa.select(sales.c.amount_cents).where(sales.c.store_id == store_id,
                                                        sales.c.txn_id == st.c.refund_of, sales.c.kind == "sale")
    x(sa.update(st).where(st.c.status == "new", st.c.kind == "refund")
      .values(sale_id=sale.scalar_subquery(), sale_amount=sale_amount.scalar_subquery()))
    x(sa.update(st).where(st.c.status == "new", st.c.kind == "refund", st.c.sale_id.is_(None))
      .values(status="rejected", reason="refund_of:a refund of an unknown sale"))
    x(sa.update(st).where(st.c.status == "new", st.c.kind == "refund", st.c.sale_amount < st.c.amount_cents)
      .values(status="rejected", reason="amount:a refund larger than its sale"))
    x(sales.insert().from_select(
        ["store_id", *cols, "import_id", "refund_of_id"],
        sa.select(sa.literal(store_id), *[st.c[c] for c in cols], sa.literal(imp), st.c.sale_id)
        .where(st.c.status == "new", st.c.kind == "refund")))
    refunds = x(sa.select(sa.func.count()).select_from(st)
                .where(st.c.status == "new", st.c.kind == "refund")).scalar_one()
    counts: dict[str, int] = {str(k): int(n) for k, n in x(sa.select(st.c.status, sa.func.count())
                                                           .group_by(st.c.status)).all()}
    members = x(sa.select(sa.func.count()).select_from(st)
                .where(st.c.status == "new", st.c.member_id.is_not(None))).scalar_one()
    for r in x(sa.select(st.c.line, st.c.reason).where(st.c.status == "rejected").order_by(st.c.line)):
        field, _, reason = str(r.reason).partition(":")
        report(Rejected(r.line, field, reason))
    rep = ImportReport(imp, read, int(counts.get("new", 0)), int(counts.get("duplicate", 0)),
                       int(counts.get("rejected", 0)) + parse_rejects, int(refunds), int(members))
    x(sa.update(pos_imports).where(pos_imports.c.id == imp).values(
        rows_new=rep.rows_new, rows_duplicate=rep.rows_duplicate, rows_rejected=rep.rows_rejected))
    return rep


def write_report(rejected: Rejected, out: io.TextIOBase | Any) -> None:
    """One rejected row as a CSV line ``line,column,reason`` (the ``--rejects`` file)."""
    csv.writer(out).writerow([rejected.line, rejected.field, rejected.reason])
