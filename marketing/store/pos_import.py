"""``keliu pos import FILE --store S``: a POS export (CSV or XLSX) into ``sales`` (an edge: files and SQL).

The file is streamed, never held, so memory does not grow with the file. On PostgreSQL a CSV is parsed by the
server (:func:`_stage_in_server`: ``COPY`` of the raw bytes, plain rows converted in SQL, the others through
Python's parser, with the same results). Otherwise rows are parsed one by one (:func:`marketing.core.pos.parse_row`;
XLSX through openpyxl's read-only mode) and written in batches to a temporary staging table (PostgreSQL: ``COPY …
FROM STDIN``; SQLite: batched inserts). Then, **in the same transaction**, SQL decides over the whole file at once:

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu.db import TS
from marketing.core import codes
from marketing.core.pos import MAX_CENTS, RowInvalid, SaleRow, header_map, parse_row
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


def _is_gb18030(path: Path) -> bool:
    """Whether a CSV is not UTF-8 (and so, from a Chinese Excel, GB18030), judged on its first 64 KiB; both the
    Python reader and the server's COPY ask this."""
    with path.open("rb") as raw:
        head = raw.read(65536)
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # a cut multi-byte character at the end of the sample is not a reason to switch
        return exc.start < len(head) - 4
    return False


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
    encoding = "gb18030" if _is_gb18030(path) else "utf-8-sig"
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
        staged = None
        if conn.dialect.name == "postgresql" and path.suffix.lower() not in (".xlsx", ".xlsm"):
            rows_close = getattr(rows, "close", None)
            if rows_close is not None:
                rows_close()  # the server reads the file from here on
            staged = _stage_in_server(conn, path, cols, len(header), tz, now, directory, tokens, report)
            if staged is None:  # not for the server's parser: the Python path, from the start of the file
                rows = read_rows(path)
                next(rows)
        if staged is None:
            staged = _stage(conn, enumerate(rows, start=2), cols, tz, now, directory, tokens, report)
        read, parse_rejects = staged
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


def _stage(conn: Connection, rows: Iterable[tuple[int, Sequence[object]]], cols: dict[str, int], tz: ZoneInfo,
           now: datetime, directory: MemberDirectory | None, tokens: MemberTokens | None,
           report: Callable[[Rejected], None]) -> tuple[int, int]:
    """Parse and load every ``(line, cells)`` into the staging table, a batch at a time (members are resolved
    between two batches' COPYs: the connection cannot query during a COPY); returns (rows read, rows rejected by
    parsing)."""
    batch: list[tuple[int, SaleRow]] = []
    read = rejected = 0
    phones: dict[str, int | None] = {}
    for line, cells in rows:
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


#: what Python's ``str.strip()`` removes (``str.isspace``): a cell starting or ending with one goes to Python
_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
         "\u200a\u2028\u2029\u202f\u205f\u3000"
RAW = "pos_raw"
SLOW = "pos_slow"
CHUNK = 1 << 20


def _stage_in_server(conn: Connection, path: Path, cols: dict[str, int], width: int, tz: ZoneInfo, now: datetime,
                     directory: MemberDirectory | None, tokens: MemberTokens | None,
                     report: Callable[[Rejected], None]) -> tuple[int, int] | None:
    """PostgreSQL, CSV: the server parses the file. The file's bytes are streamed to ``COPY … (FORMAT csv,
    HEADER)`` into a temporary table of text columns; one set-based statement converts every row that is plainly
    valid (the cases where the SQL conversion is the same as :func:`marketing.core.pos.parse_row`'s: ASCII
    digits, ISO times of the usual shape, no member reference, no surrounding spaces) and hashes it like
    :meth:`SaleRow.content_hash`; every other row (a member QR, a coupon code or a phone to resolve, anything
    unusual or invalid) is parsed by Python exactly as before, so the answers are the same row for row.

    ``None`` (nothing kept) when the file is not for the server's parser: a quote character (Python's CSV reader
    and PostgreSQL's differ on a quote inside a field), a ``\\.`` line (COPY's end-of-data marker), rows of
    another width than the header, or bytes that are not in the file's encoding."""
    encoding = "GB18030" if _is_gb18030(path) else "UTF8"
    names = [f"c{i}" for i in range(width)]
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {RAW} (line integer GENERATED ALWAYS AS IDENTITY (START WITH 2), "
                         + ", ".join(f"{n} text" for n in names) + ")")
    driver = conn.connection.driver_connection
    assert driver is not None
    sp = conn.begin_nested()
    try:
        with driver.cursor() as cur, cur.copy(
                f"COPY {RAW} ({', '.join(names)}) FROM STDIN (FORMAT csv, HEADER true, ENCODING '{encoding}')"
        ) as copy, path.open("rb") as f:
            tail = b"\n"
            while chunk := f.read(CHUNK):
                seen = tail + chunk
                if b'"' in chunk or b"\n\\.\n" in seen or b"\n\\.\r" in seen or seen.endswith(b"\n\\."):
                    raise _NotForServer
                tail = seen[-3:]
                copy.write(chunk)
    except (_NotForServer, Exception) as exc:  # psycopg's DataError/BadCopyFileFormat/...: the file, not the server
        sp.rollback()
        if not isinstance(exc, _NotForServer | sa.exc.DBAPIError) and type(exc).__module__.split(".")[0] != "psycopg":
            raise
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW}")
        return None
    sp.commit()

    def cell(key: str) -> str:
        i = cols.get(key)
        return f"r.c{i}" if i is not None else "NULL"

    # blank rows (every cell empty) are not rows; the line numbers still count them
    conn.exec_driver_sql(f"DELETE FROM {RAW} WHERE " + " AND ".join(f"coalesce({n}, '') = ''" for n in names))
    read = int(conn.exec_driver_sql(f"SELECT count(*) FROM {RAW}").scalar_one())
    sp_ = "[" + "".join(_SPACE) + "]"
    amount = f"{cell('amount_cents')}" if "amount_cents" in cols else "NULL"
    plain = [f"({cell(k)} IS NULL OR ({cell(k)} !~ :edge))" for k in ("txn_id", "ts", "amount", "amount_cents",
                                                                         "kind", "refund_of", "staff")]
    ts = cell("ts")
    kind = f"CASE coalesce({cell('kind')}, '') WHEN '' THEN 'sale' WHEN 'sale' THEN 'sale' WHEN '销售' THEN 'sale' " \
           f"WHEN 'refund' THEN 'refund' WHEN '退款' THEN 'refund' END"
    cents = (f"CASE WHEN {amount} IS NOT NULL THEN CAST({amount} AS bigint) ELSE "
             f"CAST(split_part({cell('amount')}, '.', 1) AS bigint) * 100 + "
             f"CAST(rpad(split_part({cell('amount')}, '.', 2), 2, '0') AS bigint) END")
    # the time: an offset in the text, or the store's local time when that is unambiguous (no change of UTC
    # offset within a day either side; such rows go to Python, which takes the earlier offset as zoneinfo does)
    local = f"CAST({ts} AS timestamp)"
    instant = f"CASE WHEN {ts} ~ '(Z|[+-]\\d\\d:\\d\\d)$' THEN CAST({ts} AS timestamptz) " \
              f"ELSE {local} AT TIME ZONE :tz END"
    conds = [
        f"{cell('txn_id')} IS NOT NULL AND char_length({cell('txn_id')}) <= 64",
        *plain,
        *[f"{cell(k)} IS NULL" for k in ("member_qr", "coupon_code", "phone")],
        # ISO 8601 of the usual shape, fields in range, then the day in its month
        (f"{ts} ~ '^[1-9]\\d{{3}}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])[T ]([01]\\d|2[0-3]):[0-5]\\d(:[0-5]\\d"
        f"(\\.\\d{{1,6}})?)?(Z|[+-](0\\d|1[0-4]):[0-5]\\d)?$'"),
        (f"CAST(substr({ts}, 9, 2) AS integer) <= extract(day from date_trunc('month', "
        f"make_date(CAST(substr({ts}, 1, 4) AS integer), CAST(substr({ts}, 6, 2) AS integer), 1)) "
        f"+ interval '1 month - 1 day')"),
        (f"({ts} ~ '(Z|[+-]\\d\\d:\\d\\d)$' OR ((({local} AT TIME ZONE :tz) - interval '26 hours') AT TIME ZONE :tz "
        f"= {local} - interval '26 hours' AND (({local} AT TIME ZONE :tz) + interval '26 hours') AT TIME ZONE :tz "
        f"= {local} + interval '26 hours'))"),
        (f"CASE WHEN {amount} IS NOT NULL THEN {amount} ~ '^\\d{{1,12}}$' "
         f"ELSE coalesce({cell('amount')} ~ '^\\d{{1,12}}(\\.\\d{{1,2}})?$', false) END"),
        f"{kind} IS NOT NULL",
        (f"(({kind} = 'refund' AND {cell('refund_of')} IS NOT NULL AND char_length({cell('refund_of')}) <= 64) OR "
        f"({kind} = 'sale' AND {cell('refund_of')} IS NULL))"),
        f"({cell('staff')} IS NULL OR char_length({cell('staff')}) <= 80)",
    ]
    # nested CASEs, not AND: SQL does not promise to evaluate AND's operands in order, and a cast must only see
    # text its pattern has admitted
    fast = "true"
    for cond in reversed(conds):
        fast = f"CASE WHEN {cond} THEN {fast} ELSE false END"
    # the plain rows: converted and hashed in SQL (the cents are checked against the maximum here)
    ts_text = ("to_char(t.instant AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
               "extract(microseconds from t.instant) % 1000000 = 0 THEN '' ELSE "
               "to_char(t.instant AT TIME ZONE 'UTC', '.US') END || '+00:00'")
    conn.execute(sa.text(
        f"INSERT INTO {STAGING} (line, txn_id, kind, ts, amount_cents, refund_of, staff, row_hash, status) "
        f"SELECT t.line, t.txn_id, t.kind, t.instant, t.cents, t.refund_of, t.staff, "
        f"encode(sha256(convert_to(concat_ws(chr(31), t.txn_id, t.kind, {ts_text}, CAST(t.cents AS text), "
        f"coalesce(t.refund_of, ''), '', coalesce(t.staff, ''), ''), 'UTF8')), 'hex'), 'new' FROM ("
        f"SELECT f.line, f.txn_id, f.kind, CASE WHEN f.fast THEN {instant.replace('r.c', 'f.c')} END AS instant, "
        f"CASE WHEN f.fast THEN {cents.replace('r.c', 'f.c')} END AS cents, f.refund_of, f.staff FROM ("
        f"SELECT r.*, {cell('txn_id')} AS txn_id, {kind} AS kind, {cell('refund_of')} AS refund_of, "
        f"{cell('staff')} AS staff, {fast} AS fast FROM {RAW} r OFFSET 0) f WHERE f.fast OFFSET 0) t "
        f"WHERE t.cents <= :max").bindparams(tz=tz.key, edge=f"^{sp_}|{sp_}$", max=MAX_CENTS))
    # every other row through Python's parser, in line order, a batch at a time
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SLOW}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {SLOW} AS SELECT r.* FROM {RAW} r WHERE NOT EXISTS "
                         f"(SELECT 1 FROM {STAGING} s WHERE s.line = r.line)")
    conn.exec_driver_sql(f"DROP TABLE {RAW}")
    conn.exec_driver_sql(f"CREATE INDEX ON {SLOW} (line)")

    def slow_rows() -> Iterator[tuple[int, Sequence[object]]]:
        last = 0
        while True:
            got = conn.exec_driver_sql(f"SELECT line, {', '.join(names)} FROM {SLOW} WHERE line > %(last)s "
                                       f"ORDER BY line LIMIT {BATCH}", {"last": last}).all()
            if not got:
                return
            for r in got:
                yield int(r[0]), [c if c is not None else "" for c in r[1:]]
            last = int(got[-1][0])

    _read, rejected = _stage(conn, slow_rows(), cols, tz, now, directory, tokens, report)
    conn.exec_driver_sql(f"DROP TABLE {SLOW}")
    return read, rejected


class _NotForServer(MarketingError):
    """Internal: this CSV goes through Python's parser."""


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
