"""``keliu member import``: members from a store's CRM, with their consent evidence (an edge: files and SQL).

The file is read as a stream (CSV: UTF-8, with or without a BOM; XLSX: the first sheet, read-only), each row
checked by :func:`portal.core.member_import.parse`, and everything written in ONE transaction: a database error
or an unreadable file leaves nothing imported. Rejected rows are reported by line (and, with
``all_or_nothing``, roll the whole import back).

Idempotent on the phone: a known member is not created again, and keeps their first store and join date. An
evidenced consent is appended as a decision (``consents.source`` = the evidence's source, ``ts`` = its date,
``version`` = its text's version) unless the member already has a decision on that purpose at least as recent: a
choice the member made on the portal since is never overridden by older paper, and importing the same file twice
adds nothing.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu.tenants import STORES
from portal.core import member_import as rows_
from portal.errors import BadRequest, PortalError
from portal.store.models import consents, members


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class Result:
    created: int = 0
    updated: int = 0
    consents: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    committed: bool = False


class _Rollback(PortalError):
    """Raised inside the transaction to undo it (all-or-nothing with rejected rows)."""


def read(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, cells by column) of every data row; BadRequest for an unreadable file or header."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        yield from _xlsx(path)
    else:
        raise BadRequest(f"{path.name}: a .csv or .xlsx file, please", "bad_file")


def _csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            head = next(reader, None)
            if head is None:
                raise BadRequest(f"{path.name}: empty file", "bad_file")
            names = rows_.header(head)
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(names):
                    raise BadRequest(f"{path.name} line {reader.line_num}: more cells than columns", "bad_file")
                yield reader.line_num, {n: c for n, c in zip(names, cells, strict=False) if n}
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{path.name}: not UTF-8 text ({exc.reason})", "bad_file") from exc
    except csv.Error as exc:
        raise BadRequest(f"{path.name}: not a CSV file ({exc})", "bad_file") from exc


def _xlsx(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import zipfile

    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise BadRequest(f"{path.name}: not an XLSX workbook ({exc.__class__.__name__})", "bad_file") from exc
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        head = next(it, None)
        if head is None:
            raise BadRequest(f"{path.name}: empty sheet", "bad_file")
        names = rows_.header(list(head))
        for n, cells in enumerate(it, start=2):
            if not any(c not in (None, "") for c in cells):
                continue
            yield n, {name: c for name, c in zip(names, cells, strict=False) if name}
    finally:
        wb.close()


def _zones(conn: Connection) -> dict[str, tzinfo]:
    return {r.id: ZoneInfo(r.timezone) for r in conn.execute(sa.select(STORES.c.id, STORES.c.timezone))}


def _store_row(conn: Connection, row: rows_.Row, now: datetime, result: Result) -> None:
    mid = conn.execute(sa.select(members.c.id).where(members.c.phone_e164 == row.phone_e164)).scalar()
    if mid is None:
        joined = row.joined or now
        mid = conn.execute(sa.insert(members).values(
            phone_e164=row.phone_e164, created_at=joined, first_store_id=row.store_id, last_seen_at=joined)
            .returning(members.c.id)).scalar_one()
        result.created += 1
    else:
        result.updated += 1
    for ev in row.evidence:
        latest = conn.execute(sa.select(sa.func.max(consents.c.ts)).where(
            consents.c.member_id == mid, consents.c.kind == ev.kind)).scalar()
        if latest is not None and latest >= ev.ts:
            continue
        conn.execute(sa.insert(consents).values(member_id=mid, kind=ev.kind, version=ev.version, granted=True,
                                                ts=ev.ts, store_id=row.store_id, lang="zh-CN", source=ev.source))
        result.consents += 1


def import_file(engine: Engine, path: Path, *, default_store: str, now: datetime,
                all_or_nothing: bool = False) -> Result:
    """Import ``path`` in one transaction. A file-level problem (unreadable, bad header) raises BadRequest and
    imports nothing; rejected rows are listed in the result."""
    result = Result()
    try:
        with engine.begin() as conn:
            zones = _zones(conn)
            if default_store not in zones:
                raise BadRequest(f"store: no store {default_store!r}", "bad_store")
            for line, cells in read(path):
                try:
                    row = rows_.parse(cells, default_store, zones, now)
                except PortalError as exc:
                    result.rejected.append(Rejected(line, exc.message))
                    continue
                _store_row(conn, row, now, result)
            if all_or_nothing and result.rejected:
                raise _Rollback("rejected rows: nothing imported")
    except _Rollback:
        result.created = result.updated = result.consents = 0
        return result
    result.committed = True
    return result


def write_report(path: Path, rejected: list[Rejected]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["line", "reason"])
        for r in rejected:
            w.writerow([r.line, r.reason])
