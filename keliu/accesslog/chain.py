"""The hash chain of the access log (pure: values in, values out).

Every record carries the SHA-256 of its predecessor's link (``prev_hash``) and its own link (``hash``):

    hash = SHA-256( prev_hash "|" seq "|" session_id "|" member_id "|" body )

``body`` is the record's other fields in a fixed order, each written ``<length>:<text>`` (``~`` for a missing
value), so no value can be shifted into its neighbour. Timestamps are UTC with microseconds. The same link is
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
    """A timestamp's canonical text: UTC, microseconds, ``Z``."""
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp in the access log: {ts!r}")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _field(value: Any) -> str:
    if value is None:
        return "~"
    if isinstance(value, datetime):
        value = stamp(value)
    text = str(value)
    return f"{len(text)}:{text}"


def body(rec: Mapping[str, Any]) -> str:
    """The canonical text of a record's body (missing keys count as ``None``)."""
    return "".join([_field(rec.get(k)) for k in BODY])


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
    """Walk records in ``seq`` order from the expected start; return the first bad one (or ``None``) and how many
    were checked. ``rows`` are mappings with every column of ``access_log``."""
    expect_seq, expect_prev = start_seq, start_prev
    n = 0
    for r in rows:
        seq = r["seq"]
        if seq != expect_seq:
            return Bad(expect_seq, f"missing or out of order (found record {seq} where {expect_seq} belongs)"), n
        if r["prev_hash"] != expect_prev:
            return Bad(seq, "previous-hash mismatch (a record before it was changed, deleted or moved)"), n
        h = link(expect_prev, seq, r["session_id"], r["member_id"], body(r))
        if h != r["hash"]:
            return Bad(seq, "hash mismatch (the record was changed)"), n
        n += 1
        expect_seq, expect_prev = seq + 1, h
    return None, n


def anchor_message(seq: int, hash_: str, at: datetime) -> bytes:
    """What a daily anchor signs: the chain's head (``seq``, ``hash``) at ``at``."""
    return f"keliu-accesslog-anchor|{seq}|{hash_}|{stamp(at)}".encode()


def purge_message(first_seq: int, first_prev: str, cut: datetime) -> bytes:
    """What a purge record signs: the chain now starts at ``first_seq`` whose ``prev_hash`` is ``first_prev``."""
    return f"keliu-accesslog-purge|{first_seq}|{first_prev}|{stamp(cut)}".encode()
