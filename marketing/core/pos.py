"""POS sales and refunds: the file's header set and one row's parsing (pure).

A POS file (CSV, UTF-8 with or without BOM, or the first sheet of an XLSX) has a header row; column names are
matched case-insensitively, in English or Chinese:

=============== ============== ==========================================================================
column          中文            meaning
=============== ============== ==========================================================================
``txn_id``      交易号          the POS transaction id (required; unique per store; at most 64 characters)
``ts``          时间            when: ISO 8601 (``2026-12-06T14:03:00+08:00``); without an offset it is the
                               store's local time (required)
``amount``      金额            yuan with at most two decimals (``128.50``), or ``amount_cents`` (分) (required)
``kind``        类型            ``sale``/``销售`` (default) or ``refund``/``退款``
``refund_of``   原交易号        a refund's sale (its ``txn_id``; required for a refund; in this file or before)
``member_qr``   会员码          the member card's QR payload scanned at the till (optional)
``coupon_code`` 券码            a coupon redeemed on the sale (optional)
``phone``       手机号          the member's mobile number as typed at the till (optional)
``staff``       店员            the cashier or assistant (optional)
=============== ============== ==========================================================================

A sale is linked to a member only deterministically, in this order: a member QR that verifies, a coupon whose
holder is known, a phone number that is a member's. Nothing is inferred from times or amounts.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from marketing.errors import FieldInvalid

ALIASES: dict[str, str] = {
    "txn_id": "txn_id", "transaction_id": "txn_id", "交易号": "txn_id", "订单号": "txn_id",
    "ts": "ts", "time": "ts", "timestamp": "ts", "时间": "ts",
    "amount": "amount", "金额": "amount", "amount_cents": "amount_cents", "金额分": "amount_cents",
    "kind": "kind", "type": "kind", "类型": "kind",
    "refund_of": "refund_of", "原交易号": "refund_of",
    "member_qr": "member_qr", "会员码": "member_qr",
    "coupon_code": "coupon_code", "coupon": "coupon_code", "券码": "coupon_code",
    "phone": "phone", "手机号": "phone",
    "staff": "staff", "店员": "staff",
}
FIELDS = ("txn_id", "ts", "amount", "amount_cents", "kind", "refund_of", "member_qr", "coupon_code", "phone",
          "staff")
KINDS = {"sale": "sale", "销售": "sale", "refund": "refund", "退款": "refund"}
MAX_CENTS = 100_000_000_000


class RowInvalid(FieldInvalid):
    """A POS row (or header) that cannot be used: ``field`` names the column."""


@dataclass(frozen=True)
class SaleRow:
    """One parsed sale or refund (member references still raw: the edge resolves them)."""

    txn_id: str
    kind: str
    ts: datetime
    amount_cents: int
    refund_of: str | None = None
    member_qr: str | None = None
    coupon_code: str | None = None
    phone: str | None = None
    staff: str | None = None

    def content_hash(self, member_id: int | None) -> str:
        """What identifies the row's content (a replay of the same txn id with another content is refused). The
        phone and QR payload are left out (the resolved member id stands for them): no phone in a hash."""
        text = "\x1f".join((self.txn_id, self.kind, self.ts.isoformat(), str(self.amount_cents),
                            self.refund_of or "", self.coupon_code or "", self.staff or "",
                            "" if member_id is None else str(member_id)))
        return hashlib.sha256(text.encode()).hexdigest()


def header_map(header: Sequence[object]) -> dict[str, int]:
    """Column name → index. Raises :class:`RowInvalid` for a missing required column or a repeated one."""
    out: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = str(raw or "").strip().lstrip("\ufeff").lower()
        key = ALIASES.get(name)
        if key is None:
            continue
        if key in out:
            raise RowInvalid(name, "column appears twice")
        out[key] = i
    for need in ("txn_id", "ts"):
        if need not in out:
            raise RowInvalid(need, "missing column")
    if "amount" not in out and "amount_cents" not in out:
        raise RowInvalid("amount", "missing column (amount or amount_cents)")
    return out


def _text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def parse_cents(text: str) -> int:
    """``"128.5"`` → 12850; at most two decimals, no sign, no thousands separators."""
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)) or len(whole) > 12:
        raise RowInvalid("amount", f"not an amount of yuan: {text[:20]!r}")
    return int(whole) * 100 + int((frac + "00")[:2]) if frac else int(whole) * 100


def parse_ts(v: object, tz: ZoneInfo) -> datetime:
    if isinstance(v, datetime):  # an XLSX date cell: the store's local time
        dt = v
    else:
        text = _text(v)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise RowInvalid("ts", f"not an ISO 8601 time: {text[:40]!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(UTC)


def parse_row(cells: Sequence[object], cols: dict[str, int], tz: ZoneInfo) -> SaleRow:
    """One data row → :class:`SaleRow`, or :class:`RowInvalid` naming the first bad column."""
    n = len(cells)

    def get(key: str) -> str:
        i = cols.get(key)
        return _text(cells[i]) if i is not None and i < n else ""

    txn = get("txn_id")
    if not txn or len(txn) > 64:
        raise RowInvalid("txn_id", "required, at most 64 characters")
    i = cols["ts"]
    ts = parse_ts(cells[i] if i < n else "", tz)
    if "amount_cents" in cols and get("amount_cents"):
        raw = get("amount_cents")
        if not raw.isdigit() or len(raw) > 13:
            raise RowInvalid("amount_cents", "a whole number of cents")
        cents = int(raw)
    else:
        cents = parse_cents(get("amount"))
    if cents > MAX_CENTS:
        raise RowInvalid("amount", "too large")
    kind = KINDS.get(get("kind").lower() or "sale")
    if kind is None:
        raise RowInvalid("kind", "sale or refund")
    refund_of = get("refund_of") or None
    if kind == "refund" and refund_of is None:
        raise RowInvalid("refund_of", "a refund names its sale")
    if kind == "sale" and refund_of is not None:
        raise RowInvalid("refund_of", "only a refund names a sale")
    if refund_of is not None and len(refund_of) > 64:
        raise RowInvalid("refund_of", "at most 64 characters")
    coupon = get("coupon_code") or None
    if coupon is not None and len(coupon) > 32:
        raise RowInvalid("coupon_code", "at most 32 characters")
    staff = get("staff") or None
    if staff is not None and len(staff) > 80:
        raise RowInvalid("staff", "at most 80 characters")
    qr = get("member_qr") or None
    if qr is not None and len(qr) > 512:
        raise RowInvalid("member_qr", "at most 512 characters")
    phone = get("phone") or None
    if phone is not None and len(phone) > 32:
        raise RowInvalid("phone", "at most 32 characters")
    return SaleRow(txn, kind, ts, cents, refund_of, qr, coupon, phone, staff)


def parse_api_body(body: object, tz: ZoneInfo) -> SaleRow:
    """The transactions endpoint's JSON body → :class:`SaleRow` (same fields; ``amount_cents`` an integer;
    ``ts`` ISO 8601)."""
    if not isinstance(body, dict):
        raise RowInvalid("body", "a JSON object")
    allowed = {"txn_id", "ts", "amount_cents", "kind", "refund_of", "member_qr", "coupon_code", "phone", "staff"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RowInvalid(unknown[0], "unknown field")
    for k in allowed - {"amount_cents"}:
        if k in body and body[k] is not None and not isinstance(body[k], str):
            raise RowInvalid(k, "a string")
    amount = body.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_CENTS:
        raise RowInvalid("amount_cents", f"an integer from 0 to {MAX_CENTS}")
    if not body.get("ts"):
        raise RowInvalid("ts", "required")
    cols = {k: i for i, k in enumerate(("txn_id", "ts", "amount_cents", "kind", "refund_of", "member_qr",
                                         "coupon_code", "phone", "staff"))}
    cells = [body.get("txn_id"), body.get("ts"), str(amount), body.get("kind"), body.get("refund_of"),
             body.get("member_qr"), body.get("coupon_code"), body.get("phone"), body.get("staff")]
    return parse_row(cells, cols, tz)
