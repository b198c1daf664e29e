"""The hash chain of the access log (pure: values in, values out).

Every record carries the SHA-256 of its predecessor's link (``prev_hash``) and its own link (``hash``):

    hash = SHA-256( prev_hash "|" seq "|" session_id "|" member_id "|" body )

``body`` is the record's other fields in a fixed order, each written ``<length>:<text>`` (``~`` for a missing
value), so no value can be shifted into its neighbour. Timestamps are ISO 8601 in UTC with microseconds. The same link is
computed by PostgreSQL in the portal's one-statement login (``keliu.accesslog.store.login_ctes``: ``concat`` and
``sha256`` over the body computed here), and by Python everywhere else; :func:`check` recomputes it.

A changed record fails its own link; a deleted or reordered one breaks the next record's ``prev_hash`` or the
sequence; a chain that does not begin at the genesis, or at the point a signed purge record names, is cut.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

#: the fields of a record's body, in their canonical order
BODY = ("ts", "event", "store_id", "phone", "account", "mac", "ip", "public_ip", "port_lo", "port_hi",
        "started_at", "ended_at", "detail")

#: events that open a session (and a NAT port block), and those that end one
OPENS = ("login", "reauth")
ENDS = ("logout", "kick", "expired", "idle", "reconcile")


@dataclass(frozen=True)
class Nat:
    """Where a LAN address's connections are translated to: the public address and its source-port block
    (deterministic NAT, RFC 7422: ``router_config.portblock``)."""

    public_ip: str | None
    port_lo: int | None
    port_hi: int | None


NO_NAT = Nat(None, None, None)


def stamp(ts: datetime) -> str:
    """A timestamp's canonical text: UTC, always with microseconds (``2026-11-18T10:00:00.000000+00:00``)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp in the access log: {ts!r}")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _s(value: Any) -> str:
    if value is None:
        return "~"
    text = str(value)
    return f"{len(text)}:{text}"


def _t(value: datetime | None) -> str:
    return "~" if value is None else "32:" + stamp(value)


#: the body's fields, each with its canonical writer (timestamps are always 32 characters)
_WRITERS = tuple(_t if k in ("ts", "started_at", "ended_at") else _s for k in BODY)
#: a row as :func:`check_rows` takes it: the chain's columns, then the body's
COLUMNS = ("seq", "prev_hash", "hash", "session_id", "member_id", *BODY)


def body(rec: Mapping[str, Any]) -> str:
    """The canonical text of a record's body (missing keys count as ``None``)."""
    return "".join([w(rec.get(k)) for k, w in zip(BODY, _WRITERS, strict=True)])


def _body_of(values: tuple[Any, ...]) -> str:
    """:func:`body` of a row's body columns, written out inline (verify runs it for every record). Timestamps may
    come as datetimes or already as their canonical text (PostgreSQL formats them: ``keliu.accesslog.store``)."""
    ts, event, store, phone, account, mac, ip, pub, lo, hi, started, ended, detail = values
    if ts.__class__ is not str:
        ts = stamp(ts)
    if started is not None and started.__class__ is not str:
        started = stamp(started)
    if ended is not None and ended.__class__ is not str:
        ended = stamp(ended)
    if lo is not None:
        lo = str(lo)
    if hi is not None:
        hi = str(hi)
    return (f"32:{ts}"
            f"{'~' if event is None else f'{len(event)}:{event}'}"
            f"{'~' if store is None else f'{len(store)}:{store}'}"
            f"{'~' if phone is None else f'{len(phone)}:{phone}'}"
            f"{'~' if account is None else f'{len(account)}:{account}'}"
            f"{'~' if mac is None else f'{len(mac)}:{mac}'}"
            f"{'~' if ip is None else f'{len(ip)}:{ip}'}"
            f"{'~' if pub is None else f'{len(pub)}:{pub}'}"
            f"{'~' if lo is None else f'{len(lo)}:{lo}'}"
            f"{'~' if hi is None else f'{len(hi)}:{hi}'}"
            f"{'~' if started is None else f'32:{started}'}"
            f"{'~' if ended is None else f'32:{ended}'}"
            f"{'~' if detail is None else f'{len(detail)}:{detail}'}")


def link(prev_hash: str, seq: int, session_id: int | None, member_id: int | None, body_text: str) -> str:
    sid = "" if session_id is None else str(session_id)
    mid = "" if member_id is None else str(member_id)
    return hashlib.sha256(f"{prev_hash}|{seq}|{sid}|{mid}|{body_text}".encode()).hexdigest()


@dataclass(frozen=True)
class Bad:
    """The first record that breaks the chain, and why."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.reason}"


def check(rows: Iterable[Mapping[str, Any]], start_seq: int = 1, start_prev: str = GENESIS) -> tuple[Bad | None, int]:
    """Walk records (mappings of every column of ``access_log``) in ``seq`` order from the expected start; return
    the first bad one (or ``None``) and how many were checked."""
    return check_rows((tuple(r.get(c) for c in COLUMNS) for r in rows), start_seq, start_prev)


def check_rows(rows: Iterable[tuple[Any, ...]], start_seq: int = 1,
               start_prev: str = GENESIS) -> tuple[Bad | None, int]:
    """:func:`check` over tuples in :data:`COLUMNS` order (the fast path of ``keliu accesslog verify``)."""
    expect_seq, expect_prev = start_seq, start_prev
    n = 0
    sha256 = hashlib.sha256
    for r in rows:
        seq, prev_hash, hash_, sid, mid = r[:5]
        if seq != expect_seq:
            return Bad(expect_seq, f"missing or out of order (found record {seq} where {expect_seq} belongs)"), n
        if prev_hash != expect_prev:
            return Bad(seq, "previous-hash mismatch (a record before it was changed, deleted or moved)"), n
        h = sha256(f"{expect_prev}|{seq}|{'' if sid is None else sid}|{'' if mid is None else mid}|"
                   f"{_body_of(r[5:])}".encode()).hexdigest()
        if h != hash_:
            return Bad(seq, "hash mismatch (the record was changed)"), n
        n += 1
        expect_seq, expect_prev = seq + 1, h
    return None, n


def check_links(rows: Iterable[tuple[Any, ...]], start_seq: int = 1,
                start_prev: str = GENESIS) -> tuple[Bad | None, int]:
    """:func:`check_rows` over (``seq``, ``prev_hash``, ``hash``, link) where the database computed each record's
    link over its stored ``prev_hash`` (``keliu.accesslog.store``): what is left is comparing text."""
    expect_seq, expect_prev = start_seq, start_prev
    n = 0
    for seq, prev_hash, hash_, computed, *_ in rows:
        if seq != expect_seq:
            return Bad(expect_seq, f"missing or out of order (found record {seq} where {expect_seq} belongs)"), n
        if prev_hash != expect_prev:
            return Bad(seq, "previous-hash mismatch (a record before it was changed, deleted or moved)"), n
        if computed != hash_:
            return Bad(seq, "hash mismatch (the record was changed)"), n
        n += 1
        expect_seq, expect_prev = seq + 1, hash_
    return None, n


def anchor_message(seq: int, hash_: str, at: datetime | str) -> bytes:
    """What a daily anchor signs: the chain's head (``seq``, ``hash``) at ``at`` (a datetime or its canonical
    text)."""
    return f"keliu-accesslog-anchor|{seq}|{hash_}|{at if isinstance(at, str) else stamp(at)}".encode()


def purge_message(first_seq: int, first_prev: str, cut: datetime) -> bytes:
    """What a purge record signs: the chain now starts at ``first_seq`` whose ``prev_hash`` is ``first_prev``."""
    return f"keliu-accesslog-purge|{first_seq}|{first_prev}|{stamp(cut)}".encode()
