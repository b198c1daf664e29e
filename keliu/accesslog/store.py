"""Writing, checking and serving the access log (an edge: SQL in the caller's transaction; SQLite and PostgreSQL).

Appends take the chain head's row lock first (``UPDATE accesslog_head``): on PostgreSQL a second writer waits for
the first to commit and then reads the head it left, on SQLite writers are serialized anyway; the chain never
forks. An append belongs to the transaction of the session change it records: both commit, or neither.

Lock order: a transaction that changes sessions or devices *and* appends takes the chain head before any of those
rows (:func:`lock_head`), the login statement included (PostgreSQL runs the CTEs of one statement in no promised
order). Taken last instead, a logout (session row, then head) and a login of the same device at the same instant
(head, then that session row) deadlocked (tests/portal/test_login_logout_race.py). Row locks last until commit
either way, so taking the head first costs no longer hold than the rest of the transaction.

The portal's one-statement login on PostgreSQL extends the chain inside its own statement (:func:`login_ctes`):
the head's ``UPDATE … RETURNING`` computes the link with PostgreSQL's ``sha256`` over the body that
:func:`keliu.accesslog.chain.body` computed, so both executors store identical records.
"""
from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.engine import Connection

from keliu.accesslog import chain
from keliu.accesslog.chain import Nat
from keliu.accesslog.signing import Signer, valid
from keliu.accesslog.tables import access_log, accesslog_head
from keliu.errors import AccesslogError

HEAD_ID = 1
#: events during which the block's device is online (an extension copies its session's opening record)
ACTIVE = (*chain.OPENS, "extend")
#: the columns a session's later records copy from its opening record
CARRIED = ("store_id", "member_id", "phone", "account", "mac", "ip", "public_ip", "port_lo", "port_hi", "started_at")


# --- appending ------------------------------------------------------------------------------------------------


def lock_head(conn: Connection) -> tuple[int, str]:
    """Take the chain head's lock (held until commit; taking it again in the transaction is free); return its
    (seq, hash) as the last committed writer left it. Call it first in a transaction that will append after
    changing other rows (the module's lock order)."""
    conn.execute(sa.update(accesslog_head).where(accesslog_head.c.id == HEAD_ID)
                 .values(seq=accesslog_head.c.seq))
    row = conn.execute(sa.select(accesslog_head.c.seq, accesslog_head.c.hash)
                       .where(accesslog_head.c.id == HEAD_ID)).one()
    return int(row.seq), str(row.hash)


def append(conn: Connection, rec: Mapping[str, Any], *, detail_of: Any = None) -> int:
    """Append one record (``rec``: columns of ``access_log`` but the chain's); return its ``seq``.

    ``detail_of(seq, prev_hash)``: computes ``detail`` once the record's place is known (anchors and purges sign
    it)."""
    last_seq, prev = lock_head(conn)
    seq = last_seq + 1
    values = {k: rec.get(k) for k in (*chain.BODY, "session_id", "member_id")}
    if detail_of is not None:
        values["detail"] = detail_of(seq, prev)
    h = chain.link(prev, seq, values["session_id"], values["member_id"], chain.body(values))
    conn.execute(sa.update(accesslog_head).where(accesslog_head.c.id == HEAD_ID)
                 .values(seq=seq, prev_hash=prev, hash=h))
    conn.execute(sa.insert(access_log).values(seq=seq, prev_hash=prev, hash=h, **values))
    return seq




def opening_record(event: str, ts: datetime, store_id: str, session_id: int | None, member_id: int | None,
                   phone: str | None, account: str | None, mac: str | None, ip: str, nat: Nat,
                   method: str) -> dict[str, Any]:
    return {"ts": ts, "event": event, "store_id": store_id, "session_id": session_id, "member_id": member_id,
            "phone": phone, "account": account, "mac": mac, "ip": ip, "public_ip": nat.public_ip,
            "port_lo": nat.port_lo, "port_hi": nat.port_hi, "started_at": ts, "ended_at": None, "detail": method}


def ended(conn: Connection, *, event: str, ts: datetime, session_id: int, store_id: str, member_id: int | None,
          ip: str, started_at: datetime | None) -> int:
    """A session's end (or extension): the record copies the session's opening record (its phone, MAC and NAT
    block; the MAC is nowhere else). A session opened before the access log existed gets what the session row
    knows."""
    first = conn.execute(sa.select(*[access_log.c[c] for c in CARRIED]).where(
        access_log.c.session_id == session_id, access_log.c.event.in_(chain.OPENS))
        .order_by(access_log.c.seq).limit(1)).first()
    rec: dict[str, Any] = dict(first._mapping) if first is not None else {
        "store_id": store_id, "member_id": member_id, "ip": ip, "started_at": started_at}
    rec.update(ts=ts, event=event, session_id=session_id, ended_at=None if event == "extend" else ts,
               detail=None)
    return append(conn, rec)


# --- the portal's one-statement login (PostgreSQL) -------------------------------------------------------------


def login_ctes(opened_cte: Any, values: Mapping[str, Any], body: Any, also: Any) -> list[Any]:
    """Two CTEs that append the login's record inside the login statement: the head, locked and advanced (its
    new link computed by PostgreSQL over ``body``), and the record, written only if ``opened_cte`` (``id``,
    ``member_id`` of the new session) holds a row. ``values``: SQL expressions of the body's columns, over ``also``
    (a one-row CTE of the statement's values)."""
    h = accesslog_head
    bar: Any = sa.literal_column("'|'")
    new_seq = h.c.seq + sa.literal_column("1")
    sid = sa.select(opened_cte.c.id).scalar_subquery()
    mid = sa.select(opened_cte.c.member_id).scalar_subquery()
    digest = sa.func.encode(sa.func.sha256(sa.func.convert_to(
        sa.func.concat(h.c.hash, bar, new_seq, bar, sid, bar, mid, bar, body), sa.literal_column("'UTF8'"))),
        sa.literal_column("'hex'"))
    head = (sa.update(h).where(h.c.id == sa.literal_column(str(HEAD_ID)), sa.select(opened_cte.c.id).exists())
            .values(seq=new_seq, prev_hash=h.c.hash, hash=digest)
            .returning(h.c.seq, h.c.prev_hash, h.c.hash).cte("alhead"))
    cols = ["seq", "prev_hash", "hash", "session_id", "member_id", *values]
    row = (sa.select(head.c.seq, head.c.prev_hash, head.c.hash, opened_cte.c.id, opened_cte.c.member_id,
                     *values.values())
           .select_from(head.join(opened_cte, sa.true()).join(also, sa.true()))
           .set_label_style(sa.SelectLabelStyle.LABEL_STYLE_NONE))
    return [head, sa.insert(access_log).from_select(cols, row).cte("alrec")]


# --- verify ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    records: int
    first_seq: int | None
    last_seq: int | None
    anchors: int
    last_anchor: datetime | None
    bad: chain.Bad | None

    @property
    def ok(self) -> bool:
        return self.bad is None


def _start(conn: Connection, public: Ed25519PublicKey) -> tuple[int, str, chain.Bad | None]:
    """Where the chain must begin: the genesis, or the point the latest signed purge record names."""
    row = conn.execute(sa.select(access_log.c.seq, access_log.c.detail).where(access_log.c.event == "purge")
                       .order_by(access_log.c.seq.desc()).limit(1)).first()
    if row is None:
        return 1, chain.GENESIS, None
    try:
        d = json.loads(row.detail)
        first_seq, first_prev, cut = int(d["first_seq"]), str(d["first_prev"]), datetime.fromisoformat(d["cut"])
        ok = valid(public, chain.purge_message(first_seq, first_prev, cut), str(d["sig"]))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        return 1, chain.GENESIS, chain.Bad(int(row.seq), "purge record's signature is not valid")
    return first_seq, first_prev, None


#: PostgreSQL writes a timestamp's canonical text itself (chain.stamp): parsing it into a datetime and formatting it
#: again in Python cost more than hashing the record
_PG_STAMP = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


def _canonical_column(conn: Connection, name: str) -> Any:
    col = access_log.c[name]
    if conn.dialect.name == "postgresql" and name in ("ts", "started_at", "ended_at"):
        return sa.func.to_char(sa.func.timezone(sa.literal_column("'UTC'"), col),
                               sa.literal_column(f"'{_PG_STAMP}'")).label(name)
    return col


def _pg_link() -> Any:
    """The link of each record, computed by PostgreSQL over its stored ``prev_hash`` exactly as
    :func:`keliu.accesslog.chain.link` over :func:`keliu.accesslog.chain.body` (the login statement writes links
    the same way): verify then only compares text, at C speed, and fetches five columns instead of eighteen."""
    c = access_log.c
    bar: Any = sa.literal_column("'|'")
    tilde: Any = sa.literal_column("'~'")
    parts: list[Any] = []
    for name in chain.BODY:
        col = c[name]
        if name in ("ts", "started_at", "ended_at"):
            text: Any = sa.func.concat(sa.literal_column("'32:'"), _canonical_column_pg(col))
        else:
            as_text = sa.cast(col, sa.Text)
            text = sa.func.concat(sa.func.length(as_text), sa.literal_column("':'"), as_text)
        parts.append(sa.case((col.is_(None), tilde), else_=text))
    body = sa.func.concat(*parts)
    return sa.func.encode(sa.func.sha256(sa.func.convert_to(
        sa.func.concat(c.prev_hash, bar, c.seq, bar, c.session_id, bar, c.member_id, bar, body),
        sa.literal_column("'UTF8'"))), sa.literal_column("'hex'")).label("link")


def _canonical_column_pg(col: Any) -> Any:
    return sa.func.to_char(sa.func.timezone(sa.literal_column("'UTC'"), col), sa.literal_column(f"'{_PG_STAMP}'"))


def _rows(conn: Connection, start_seq: int, batch: int = 20000) -> Generator[tuple[Any, ...], None, None]:
    """Every record from ``start_seq`` in :data:`keliu.accesslog.chain.COLUMNS` order, streamed."""
    q = (sa.select(*[_canonical_column(conn, c) for c in chain.COLUMNS]).where(access_log.c.seq >= start_seq)
         .order_by(access_log.c.seq))
    result = conn.execute(q.execution_options(yield_per=batch))
    try:
        for part in result.partitions():
            yield from cast("Sequence[tuple[Any, ...]]", part)  # rows are tuples; no copy per record
    finally:
        result.close()  # a check that stops at a bad record leaves the server-side cursor open otherwise


def _check_in_python(conn: Connection, start_seq: int, start_prev: str) -> tuple[chain.Bad | None, int]:
    rows = _rows(conn, start_seq)
    try:
        return chain.check_rows(rows, start_seq, start_prev)
    finally:
        rows.close()


def _check_in_postgres(conn: Connection, start_seq: int, start_prev: str) -> tuple[chain.Bad | None, int]:
    """The same checks as :func:`keliu.accesslog.chain.check_rows`, run by PostgreSQL in one pass (a window over
    ``seq``): each record's link recomputed (:func:`_pg_link`), its ``prev_hash`` against the previous record's
    ``hash``, its ``seq`` against the previous one's. Only the first bad record and the count come back."""
    c = access_log.c
    walk = sa.select(c.seq, c.prev_hash, c.hash, _pg_link(),
                     sa.func.lag(c.seq).over(order_by=c.seq).label("pseq"),
                     sa.func.lag(c.hash).over(order_by=c.seq).label("phash")).where(c.seq >= start_seq).subquery("walk")
    gap = sa.or_(sa.and_(walk.c.pseq.is_(None), walk.c.seq != start_seq),
                 sa.and_(walk.c.pseq.is_not(None), walk.c.seq != walk.c.pseq + sa.literal_column("1")))
    wrong_prev = walk.c.prev_hash != sa.func.coalesce(walk.c.phash, start_prev)
    why = sa.case((gap, sa.literal_column("'gap'")), (wrong_prev, sa.literal_column("'prev'")),
                  else_=sa.literal_column("'hash'"))
    first_bad = conn.execute(sa.select(walk.c.seq, walk.c.pseq, why)
                             .where(sa.or_(gap, wrong_prev, walk.c.link != walk.c.hash))
                             .order_by(walk.c.seq).limit(1)).first()
    if first_bad is None:
        n = conn.execute(sa.select(sa.func.count()).where(c.seq >= start_seq)).scalar_one()
        return None, int(n)
    seq, pseq, reason = first_bad
    expect = start_seq if pseq is None else pseq + 1
    n = conn.execute(sa.select(sa.func.count()).where(c.seq >= start_seq, c.seq < seq)).scalar_one()
    if reason == "gap":
        return chain.Bad(expect, f"missing or out of order (found record {seq} where {expect} belongs)"), int(n)
    if reason == "prev":
        return chain.Bad(seq, "previous-hash mismatch (a record before it was changed, deleted or moved)"), int(n)
    return chain.Bad(seq, "hash mismatch (the record was changed)"), int(n)


def _signed(conn: Connection, start_seq: int) -> list[dict[str, Any]]:
    q = (sa.select(*[_canonical_column(conn, c) for c in chain.COLUMNS])
         .where(access_log.c.seq >= start_seq, access_log.c.event.in_(["anchor", "purge"]))
         .order_by(access_log.c.seq))
    return [dict(zip(chain.COLUMNS, r, strict=True)) for r in conn.execute(q)]


def verify(conn: Connection, public: Ed25519PublicKey, in_database: bool = False) -> Report:
    """Check the whole chain: every link, the sequence, its start (genesis or the last signed purge), every
    anchor's and purge's signature, and that the head names the last record. Python recomputes every link itself
    (the database vouches for nothing); ``in_database`` on PostgreSQL: the database walks the chain
    (:func:`_check_in_postgres`: less data moved, more of the database's CPU)."""
    start_seq, start_prev, bad = _start(conn, public)
    n, anchors = 0, []
    if bad is None:
        walk = _check_in_postgres if conn.dialect.name == "postgresql" and in_database else _check_in_python
        bad, n = walk(conn, start_seq, start_prev)
        anchors = _signed(conn, start_seq)
    first = conn.execute(sa.select(sa.func.min(access_log.c.seq))).scalar()
    last_anchor = None
    if bad is None:
        for a in anchors:
            if a["event"] == "anchor":
                try:
                    d = json.loads(a["detail"])
                    ok = valid(public, chain.anchor_message(a["seq"] - 1, a["prev_hash"], a["ts"]), str(d["sig"]))
                    a["ts"] = a["ts"] if isinstance(a["ts"], datetime) else datetime.fromisoformat(a["ts"])
                except (ValueError, KeyError, TypeError):
                    ok = False
                if not ok:
                    bad = chain.Bad(a["seq"], "anchor's signature is not valid")
                    break
                last_anchor = a["ts"]
    if bad is None:
        head = conn.execute(sa.select(accesslog_head).where(accesslog_head.c.id == HEAD_ID)).one()
        last = start_seq + n - 1
        if head.seq != last and not (n == 0 and head.seq == start_seq - 1):
            bad = chain.Bad(last + 1 if head.seq > last else head.seq,
                            f"the chain head says {head.seq} records, the table ends at {last} (records were "
                            "deleted from the end, or the head was changed)")
    return Report(n, first, None if n == 0 else start_seq + n - 1,
                  sum(1 for a in anchors if a["event"] == "anchor"), last_anchor, bad)


# --- anchors and the retention purge --------------------------------------------------------------------------


def anchor(conn: Connection, signer: Signer, now: datetime) -> int:
    """Append a signed statement of the chain's head (run daily by the beat, and by ``keliu accesslog anchor``)."""
    def detail(seq: int, prev: str) -> str:
        return json.dumps({"head_seq": seq - 1, "head_hash": prev,
                           "sig": signer.sign(chain.anchor_message(seq - 1, prev, now))}, sort_keys=True)
    return append(conn, {"ts": now, "event": "anchor"}, detail_of=detail)


def purge(conn: Connection, signer: Signer, now: datetime, retention_days: int) -> int:
    """Delete the records older than the retention period from the oldest end and append a signed purge record
    naming where the chain now begins; return how many were deleted."""
    cut = now - timedelta(days=retention_days)
    lock_head(conn)
    last = conn.execute(sa.select(sa.func.max(access_log.c.seq)).where(access_log.c.ts < cut)).scalar()
    if last is None:
        return 0
    first_prev = conn.execute(sa.select(access_log.c.hash).where(access_log.c.seq == last)).scalar_one()
    deleted = conn.execute(sa.delete(access_log).where(access_log.c.seq <= last)).rowcount
    first_seq = last + 1
    detail = json.dumps({"cut": cut.isoformat(), "first_seq": first_seq, "first_prev": first_prev,
                         "deleted": deleted, "retention_days": retention_days,
                         "sig": signer.sign(chain.purge_message(first_seq, first_prev, cut))}, sort_keys=True)
    append(conn, {"ts": now, "event": "purge", "detail": detail})
    return int(deleted)


# --- serving the authorities ----------------------------------------------------------------------------------


def _record(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


def who(conn: Connection, public_ip: str | None, port: int, at: datetime) -> dict[str, Any] | None:
    """The record of the session whose NAT port block held ``public_ip:port`` at ``at``, or ``None``.

    Blocks are fixed per LAN address (RFC 7422), so the block is found by its lowest port (the largest one at or
    below ``port``), and its latest record at or before ``at`` says who held it: an opening or extension is that
    session (unless the same device logged in again later, which ended it), an end means nobody."""
    where_ip = access_log.c.public_ip.is_(None) if public_ip is None else access_log.c.public_ip == public_ip
    lo = conn.execute(sa.select(sa.func.max(access_log.c.port_lo)).where(
        where_ip, access_log.c.port_lo <= port)).scalar()
    if lo is None:
        return None
    row = conn.execute(sa.select(access_log).where(where_ip, access_log.c.port_lo == lo, access_log.c.ts <= at)
                       .order_by(access_log.c.ts.desc(), access_log.c.seq.desc()).limit(1)).first()
    if row is None or row.port_hi is None or row.port_hi < port or row.event not in ACTIVE:
        return None
    if row.mac is not None:
        later = conn.execute(sa.select(access_log.c.seq).where(
            access_log.c.mac == row.mac, access_log.c.ts > row.ts, access_log.c.ts <= at,
            access_log.c.event.in_(chain.OPENS)).limit(1)).first()
        if later is not None:
            return None
    return _record(row)


def records(conn: Connection, *, start: datetime | None = None, end: datetime | None = None,
            phone: str | None = None, mac: str | None = None) -> Iterator[dict[str, Any]]:
    """Records in ``[start, end)`` (by time), optionally of one phone or one MAC, in chain order."""
    q = sa.select(access_log).order_by(access_log.c.seq)
    if start is not None:
        q = q.where(access_log.c.ts >= start)
    if end is not None:
        q = q.where(access_log.c.ts < end)
    if phone is not None:
        q = q.where(access_log.c.phone == phone)
    if mac is not None:
        q = q.where(access_log.c.mac == mac)
    for row in conn.execute(q.execution_options(yield_per=5000)):
        yield _record(row)


def log_use(conn: Connection, event: str, now: datetime, detail: Mapping[str, Any]) -> int:
    """Record a query or an export in the chain itself (who asked what, and how much was handed out)."""
    if event not in ("query", "export"):
        raise AccesslogError(f"not a use of the log: {event}")
    return append(conn, {"ts": now, "event": event, "detail": json.dumps(dict(detail), sort_keys=True,
                                                                           ensure_ascii=False)})
