"""Staff cards, attribution bindings, the counter's record of redemptions and its flags (an edge: SQL).

The decisions are :mod:`marketing.core.attribution`'s and :mod:`marketing.core.card`'s; this module reads what
they need and stores what they decide, inside the caller's transaction (every function takes a connection). The
tables are the ``staff`` alembic branch (``staff_0001``). No phone number is stored here: a staff member's phone,
if recorded, is the keyed hash the portal uses for SMS codes (the caller computes it).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from keliu import db
from keliu.db import TS
from marketing.core import attribution, card
from marketing.core.attribution import Binding, Refused, Settings
from marketing.core.metrics import Attribution

_md = sa.MetaData()

card_uses = sa.Table(
    "card_uses", _md,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("member_id", sa.Integer, nullable=False),
    sa.Column("store_id", sa.String(64), nullable=False),
    sa.Column("staff", sa.String(64), nullable=False),
    sa.Column("used_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
)
staff_cards = sa.Table(
    "staff_cards", _md,
    sa.Column("staff", sa.String(64), primary_key=True),
    sa.Column("store_id", sa.String(64), nullable=False),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("phone_hash", sa.String(64)),
    sa.Column("created_at", TS, nullable=False),
)
staff_settings = sa.Table(
    "staff_settings", _md,
    sa.Column("store_id", sa.String(64), primary_key=True),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("protection_days", sa.Integer, nullable=False),
    sa.Column("burst_count", sa.Integer, nullable=False),
    sa.Column("burst_minutes", sa.Integer, nullable=False),
)
staff_bindings = sa.Table(
    "staff_bindings", _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("member_id", sa.Integer, nullable=False),
    sa.Column("store_id", sa.String(64), nullable=False),
    sa.Column("staff", sa.String(64), nullable=False),
    sa.Column("bound_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("protected_until", TS, nullable=False),
)
staff_flags = sa.Table(
    "staff_flags", _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.String(64), nullable=False),
    sa.Column("staff", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("member_id", sa.Integer),
    sa.Column("reference", sa.String(128), nullable=False),
    sa.Column("at", TS, nullable=False),
)
staff_redemptions = sa.Table(
    "staff_redemptions", _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.String(64), nullable=False),
    sa.Column("staff", sa.String(64), nullable=False),
    sa.Column("member_id", sa.Integer),
    sa.Column("attributed_to", sa.String(64)),
    sa.Column("reference", sa.String(128), nullable=False, unique=True),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("discount_cents", sa.BigInteger, nullable=False),
    sa.Column("at", TS, nullable=False),
)
_members = sa.table("members", sa.column("id", sa.Integer))


def erase_member(conn: Connection, member_id: int) -> dict[str, int]:
    """Forget a member here (right to erasure): their used card codes and staff bindings go; flags and redemption
    records keep their amounts for the store's books but no longer name the member."""
    return {
        "card_uses": conn.execute(sa.delete(card_uses).where(card_uses.c.member_id == member_id)).rowcount,
        "staff_bindings": conn.execute(sa.delete(staff_bindings).where(
            staff_bindings.c.member_id == member_id)).rowcount,
        "staff_flags": conn.execute(sa.update(staff_flags).where(staff_flags.c.member_id == member_id)
                                    .values(member_id=None)).rowcount,
        "staff_redemptions": conn.execute(sa.update(staff_redemptions).where(
            staff_redemptions.c.member_id == member_id).values(member_id=None)).rowcount,
    }


# --- member card codes at the counter ------------------------------------------------------------------------------


def use_card(conn: Connection, key: bytes, token: str, mall_id: str, store_id: str, staff: str,
             now: datetime) -> card.CardClaims:
    """Verify a member's card code at a counter and use its nonce up (CardRejected ``replayed`` the second time,
    also when two counters race: the nonce is the primary key)."""
    claims = card.verify(key, token, mall_id, int(now.timestamp()))
    stmt = db.dialect_insert(conn, card_uses).values(
        nonce=claims.nonce, member_id=claims.member_id, store_id=store_id, staff=staff, used_at=now,
        expires_at=datetime.fromtimestamp(claims.expires_at, now.tzinfo))
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT DO NOTHING
    if conn.execute(stmt.on_conflict_do_nothing(index_elements=[card_uses.c.nonce])
                    .returning(card_uses.c.nonce)).first() is None:
        raise card.CardRejected("replayed", "this member code was already used; ask the member to refresh the card")
    # a used nonce only matters until its code expires; keep a day of them for the record, drop older ones
    conn.execute(sa.delete(card_uses).where(card_uses.c.expires_at < now - timedelta(days=1)))
    return claims


# --- a staff member's phone, as a keyed hash ----------------------------------------------------------------------

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def phone_hash(key: bytes, e164: str) -> str:
    """The keyed hash a staff member's phone is recorded as, and a member's phone compared as (``key``: the
    appliance's ``token_hmac`` secret): no phone number is stored here. ValueError if ``e164`` is not E.164."""
    if not _E164.match(e164):
        raise ValueError("a phone number in E.164 form (+8613812345678)")
    return hmac.new(key, b"staff-phone:" + e164.encode("ascii"), hashlib.sha256).hexdigest()


# --- settings and staff cards ------------------------------------------------------------------------------------


def settings_of(conn: Connection, store_id: str) -> Settings:
    row = conn.execute(sa.select(staff_settings).where(staff_settings.c.store_id == store_id)).first()
    if row is None:
        return Settings()
    return Settings(row.window_days, row.protection_days, row.burst_count, row.burst_minutes)


def set_settings(conn: Connection, store_id: str, s: Settings) -> None:
    values = {"window_days": s.window_days, "protection_days": s.protection_days, "burst_count": s.burst_count,
              "burst_minutes": s.burst_minutes}
    stmt = db.dialect_insert(conn, staff_settings).values(store_id=store_id, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[staff_settings.c.store_id], set_=values))


@dataclass(frozen=True)
class StaffCard:
    staff: str
    store_id: str
    code: str
    phone_hash: str | None


def ensure_card(conn: Connection, staff: str, store_id: str, now: datetime) -> StaffCard:
    """The staff member's card, made on first use (its code is random: a card cannot be guessed from a name)."""
    code = "S" + secrets.token_urlsafe(15)
    stmt = db.dialect_insert(conn, staff_cards).values(staff=staff, store_id=store_id, code=code, created_at=now)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=[staff_cards.c.staff]))
    row = conn.execute(sa.select(staff_cards).where(staff_cards.c.staff == staff)).one()
    return StaffCard(row.staff, row.store_id, row.code, row.phone_hash)


def reissue_card(conn: Connection, staff: str) -> None:
    """A new code for a lost or copied card: the old one stops binding members."""
    conn.execute(sa.update(staff_cards).where(staff_cards.c.staff == staff)
                 .values(code="S" + secrets.token_urlsafe(15)))


def set_phone_hash(conn: Connection, staff: str, phone_hash: str | None) -> None:
    conn.execute(sa.update(staff_cards).where(staff_cards.c.staff == staff).values(phone_hash=phone_hash))


def card_by_code(conn: Connection, code: str) -> StaffCard | None:
    row = conn.execute(sa.select(staff_cards).where(staff_cards.c.code == code[:32])).first()
    return None if row is None else StaffCard(row.staff, row.store_id, row.code, row.phone_hash)


# --- bindings ------------------------------------------------------------------------------------------------------


def history(conn: Connection, member_id: int, store_id: str) -> list[Binding]:
    rows = conn.execute(sa.select(staff_bindings).where(staff_bindings.c.member_id == member_id,
                                                        staff_bindings.c.store_id == store_id)
                        .order_by(staff_bindings.c.bound_at)).all()
    return [Binding(r.member_id, r.store_id, r.staff, r.bound_at, r.expires_at, r.protected_until) for r in rows]


def scan(conn: Connection, member_id: int, staff_card: StaffCard, now: datetime, tz: str) -> Binding | Refused:
    """A member scanned a staff card: bind (last touch wins) or refuse (protection period). The member's row is
    locked first (PostgreSQL), so two scans of one member are decided one after the other."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(_members.c.id).where(_members.c.id == member_id).with_for_update())
    current = attribution.in_charge(history(conn, member_id, staff_card.store_id), now)
    decision = attribution.scan(current, member_id, staff_card.store_id, staff_card.staff, now, tz,
                                settings_of(conn, staff_card.store_id))
    if isinstance(decision, Binding):
        conn.execute(sa.insert(staff_bindings).values(
            member_id=member_id, store_id=decision.store_id, staff=decision.staff, bound_at=decision.bound_at,
            expires_at=decision.expires_at, protected_until=decision.protected_until))
    return decision


def in_charge(conn: Connection, member_id: int, store_id: str, at: datetime) -> str | None:
    """The staff member an event of ``member_id`` in ``store_id`` at ``at`` is attributed to, if any."""
    b = attribution.in_charge(history(conn, member_id, store_id), at)
    return None if b is None else b.staff


def attribution_rows(conn: Connection, store_ids: list[str], since: datetime, until: datetime) -> list[Attribution]:
    """The bindings of these stores that overlap ``[since, until)`` as :class:`marketing.core.metrics.Attribution`
    rows for :func:`marketing.core.metrics.attributed_revenue`: each ends at its window's end or at the member's
    next scan in that store, whichever comes first (last touch wins), so at most one holds at any instant."""
    rows = conn.execute(sa.select(staff_bindings).where(staff_bindings.c.store_id.in_(store_ids),
                                                        staff_bindings.c.bound_at < until)
                        .order_by(staff_bindings.c.member_id, staff_bindings.c.store_id, staff_bindings.c.bound_at,
                                  staff_bindings.c.id)).all()
    out: list[Attribution] = []
    for i, r in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        end = r.expires_at
        if nxt is not None and (nxt.member_id, nxt.store_id) == (r.member_id, r.store_id):
            end = min(end, nxt.bound_at)
        if end > since and end > r.bound_at:
            out.append(Attribution(r.member_id, r.staff, r.store_id, r.bound_at, end))
    return out


# --- redemptions at the counter and their flags ------------------------------------------------------------------


def record_redemption(conn: Connection, *, store_id: str, staff: str, member_id: int | None, reference: str,
                      amount_cents: int, discount_cents: int, at: datetime,
                      member_phone_hash: str | None) -> tuple[str, ...]:
    """Record a redemption made at the counter by ``staff`` (once per ``reference``, the ledger's id), attributed
    to the staff member in charge of the member then, and store the flags it raises. Returns the flags."""
    attributed = None if member_id is None else in_charge(conn, member_id, store_id, at)
    stmt = db.dialect_insert(conn, staff_redemptions).values(
        store_id=store_id, staff=staff, member_id=member_id, attributed_to=attributed, reference=reference[:128],
        amount_cents=amount_cents, discount_cents=discount_cents, at=at)
    if conn.execute(stmt.on_conflict_do_nothing(index_elements=[staff_redemptions.c.reference])
                    .returning(staff_redemptions.c.id)).first() is None:
        return ()  # the same redemption again (a retried request): recorded and flagged the first time
    s = settings_of(conn, store_id)
    previous = conn.execute(sa.select(staff_redemptions.c.at).where(
        staff_redemptions.c.staff == staff, staff_redemptions.c.reference != reference[:128],
        staff_redemptions.c.at > at - timedelta(minutes=s.burst_minutes), staff_redemptions.c.at <= at)).scalars()
    own = conn.execute(sa.select(staff_cards.c.phone_hash).where(staff_cards.c.staff == staff)).scalar()
    flags = attribution.flags_for_redemption(staff, attributed, own, member_phone_hash, list(previous), at, s)
    for kind in flags:
        conn.execute(sa.insert(staff_flags).values(store_id=store_id, staff=staff, kind=kind, member_id=member_id,
                                                   reference=reference[:128], at=at))
    return flags


def flags(conn: Connection, store_id: str, since: datetime, until: datetime) -> list[dict[str, object]]:
    rows = conn.execute(sa.select(staff_flags).where(staff_flags.c.store_id == store_id, staff_flags.c.at >= since,
                                                     staff_flags.c.at < until).order_by(staff_flags.c.at)).all()
    return [{"staff": r.staff, "kind": r.kind, "reference": r.reference, "at": r.at.isoformat()} for r in rows]
