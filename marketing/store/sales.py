"""Sales and refunds from the POS, one at a time (an edge: SQL): the transactions endpoint.

:func:`record_transaction` stores one :class:`marketing.core.pos.SaleRow` idempotently on ``(store, txn_id)``: the
same transaction again is answered with the first row (``replayed``), another content under the same id is
:class:`TxnMismatch` (422), a refund whose sale is unknown is ``Refused("unknown_sale")`` (409). The member is
resolved deterministically by :func:`resolve_member` (member QR, coupon code, phone), never guessed. The file
import (:mod:`marketing.store.pos_import`) applies the same rules in bulk.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from marketing.core import codes
from marketing.core.pos import SaleRow
from marketing.errors import MarketingError
from marketing.members import MemberDirectory, MemberTokens
from marketing.store.coupons import Refused
from marketing.store.models import coupons, sales


class TxnMismatch(MarketingError):
    """This POS transaction id was recorded before with other content (the API answers 422)."""


@dataclass(frozen=True)
class Recorded:
    id: int
    txn_id: str
    kind: str
    amount_cents: int
    ts: datetime
    refund_of: str | None
    #: how the member was matched ("qr", "coupon", "phone") or None
    match: str | None
    replayed: bool = False

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "txn_id": self.txn_id, "kind": self.kind, "amount_cents": self.amount_cents,
                "ts": self.ts.isoformat().replace("+00:00", "Z"), "refund_of": self.refund_of,
                "member_matched": self.match is not None, "match": self.match}


def coupon_holder(conn: Connection, code: str) -> int | None:
    try:
        norm = codes.normalize(code)
    except codes.InvalidCode:
        return None
    return conn.execute(sa.select(coupons.c.member_id).where(coupons.c.code == norm)).scalar()


def resolve_member(conn: Connection, row: SaleRow, now: datetime, directory: MemberDirectory | None,
                   tokens: MemberTokens | None) -> tuple[int | None, str | None]:
    """``(member_id, how)`` by the first deterministic link that holds: a member QR that verifies now, the holder
    of the coupon redeemed on the sale, a phone number that is a member's. ``(None, None)`` otherwise."""
    if row.member_qr and tokens is not None:
        m = tokens.member_of(row.member_qr, now)
        if m is not None:
            return m, "qr"
    if row.coupon_code:
        m = coupon_holder(conn, row.coupon_code)
        if m is not None:
            return m, "coupon"
    if row.phone and directory is not None:
        m = directory.member_by_phone(conn, row.phone)
        if m is not None:
            return m, "phone"
    return None, None


def _recorded(r: Any, refund_of: str | None, replayed: bool) -> Recorded:
    return Recorded(r.id, r.txn_id, r.kind, r.amount_cents, r.ts, refund_of, r.match, replayed)


def _refund_of_txn(conn: Connection, refund_of_id: int | None) -> str | None:
    if refund_of_id is None:
        return None
    return conn.execute(sa.select(sales.c.txn_id).where(sales.c.id == refund_of_id)).scalar()


def record_transaction(engine: Engine, store_id: str, row: SaleRow, now: datetime, *,
                       directory: MemberDirectory | None = None, tokens: MemberTokens | None = None) -> Recorded:
    """Store one sale or refund of ``store_id`` (see the module's docstring for the answers)."""
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                member_id, how = resolve_member(conn, row, now, directory, tokens)
                h = row.content_hash(member_id)
                prior = conn.execute(sa.select(sales).where(sales.c.store_id == store_id,
                                                            sales.c.txn_id == row.txn_id)).first()
                if prior is not None:
                    if prior.row_hash != h:
                        raise TxnMismatch("this transaction id was recorded with other content")
                    return _recorded(prior, _refund_of_txn(conn, prior.refund_of_id), True)
                refund_of_id = None
                if row.kind == "refund":
                    sale = conn.execute(sa.select(sales.c.id, sales.c.amount_cents).where(
                        sales.c.store_id == store_id, sales.c.txn_id == row.refund_of,
                        sales.c.kind == "sale")).first()
                    if sale is None:
                        raise Refused("unknown_sale", "a refund of a sale this store has not recorded")
                    if row.amount_cents > sale.amount_cents:
                        raise Refused("refund_too_large", "a refund larger than its sale")
                    refund_of_id = sale.id
                rid = int(conn.execute(sa.insert(sales).values(
                    store_id=store_id, txn_id=row.txn_id, kind=row.kind, ts=row.ts, amount_cents=row.amount_cents,
                    refund_of_id=refund_of_id, member_id=member_id, match=how,
                    coupon_code=_norm_code(row.coupon_code), staff=row.staff, row_hash=h)
                    .returning(sales.c.id)).scalar_one())
                return Recorded(rid, row.txn_id, row.kind, row.amount_cents, row.ts, row.refund_of, how)
        except sa.exc.IntegrityError:
            # the same transaction id stored concurrently: the second pass answers it as a replay (or mismatch)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _norm_code(code: str | None) -> str | None:
    if not code:
        return None
    try:
        return codes.normalize(code)
    except codes.InvalidCode:
        return None
