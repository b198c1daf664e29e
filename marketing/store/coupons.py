"""Offers, coupons and the redemption ledger (an edge: SQL on PostgreSQL and SQLite).

What this module guarantees, and how:

- **A single-use code is used once**, however many tills, phones and retries race for it: the redemption is one
  transaction whose guard is one conditional ``UPDATE coupons SET state='redeemed' … WHERE id=? AND
  state='issued' AND starts_at <= now AND expires_at > now``; the database's row lock decides, and the loser sees 0
  rows (on PostgreSQL its UPDATE waits for the winner's commit and re-checks the row; on SQLite writers are
  serialized). No read-check-write in Python (django-oscar #2101, #4612; Saleor #544).
- **Limits and budgets hold the same way**, each by one conditional ``UPDATE … SET n = n + k WHERE n + k <=
  limit`` in the same transaction (per-member uses, total and daily budget); any refused step rolls the whole
  redemption back.
- **The way back is symmetric**: a rollback is a new ledger row naming its original (``reverses_id`` is unique: an
  original is undone once), the coupon returns to ``issued`` only if the redemption being undone is still the one
  in force, and every counter moves back by a relative ``n = n - k`` (never a value computed from an earlier read,
  which is how Medusa #16595 lost concurrent updates).
- **Retries are answered, not repeated**: ``(store, idempotency_key)`` is unique in the ledger; the same key with
  the same body gets the first answer again (``replayed=True``), with another body :class:`IdempotencyMismatch`
  (Odoo PR #222372, OCA/pos #185: an offline POS re-sending its queue). A concurrent retry of the same key waits
  on the coupon's row lock (same code) or on the ledger's unique index (another code), fails, and then replays
  the winner's answer.
- **Few round trips on PostgreSQL**: a redemption that moves no counter reads and decides in autocommit, then
  writes the guard and the ledger row in one statement (its own transaction, committed durably); one that moves a
  counter runs the transaction described above.
- **Money is integer cents**; instants are UTC; the daily budget's day is the offer's local day.

Entry points: :func:`create_offer`, :func:`issue_coupon` (take an open connection: the caller's transaction),
:func:`redeem`, :func:`rollback` (take the engine: each is its own transaction, retried once on a lost race to
answer a replay), :func:`void_coupon`, :func:`expire_due`, :func:`coupon_details`, :func:`member_coupons`,
:func:`welcome_coupons` (the Wi-Fi success page), :func:`issue_for_send` (a campaign's send: once per send).
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from keliu import db
from keliu.accounts.users import AdminUser
from marketing.core import codes
from marketing.core.offers import (
    REFUSALS,
    CouponView,
    OfferInvalid,
    OfferSpec,
    check_redeemable,
    coupon_window,
    discount_cents,
    local_day,
    state_at,
    zone,
)
from marketing.errors import MarketingError
from marketing.members import MemberDirectory
from marketing.store.campaigns import campaign_sends
from marketing.store.models import coupons, member_offers, offer_days, offer_stores, offers, redemptions

stores_t = sa.table("stores", sa.column("id"), sa.column("mall_id"), sa.column("timezone"))

Channel = Literal["login", "staff", "api", "campaign"]
Source = Literal["api", "counter", "pos"]


class Refused(MarketingError):
    """A coupon operation refused for a business reason: ``reason`` is a key of
    :data:`marketing.core.offers.REFUSALS` (``status`` is the HTTP status the API answers with)."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason.replace("_", " "))
        self.reason = reason
        self.status = REFUSALS.get(reason, 409)


class IdempotencyMismatch(MarketingError):
    """The idempotency key was used before with another request body (the API answers 422)."""


# --- offers -----------------------------------------------------------------------------------------------------


def offer_zone(conn: Connection, store_ids: Sequence[str]) -> tuple[str, str]:
    """``(mall_id, timezone)`` shared by the stores an offer names; :class:`OfferInvalid` if they are unknown,
    in several malls, or in several time zones (an offer ends at one local midnight)."""
    rows = conn.execute(sa.select(stores_t.c.id, stores_t.c.mall_id, stores_t.c.timezone)
                        .where(stores_t.c.id.in_(list(store_ids)))).all()
    if len(rows) != len(set(store_ids)):
        raise OfferInvalid("stores", "unknown store")
    if len({r.mall_id for r in rows}) != 1:
        raise OfferInvalid("stores", "the stores of one offer belong to one mall")
    if len({r.timezone for r in rows}) != 1:
        raise OfferInvalid("stores", "the stores of one offer share one time zone")
    zone(rows[0].timezone)
    return str(rows[0].mall_id), str(rows[0].timezone)


def create_offer(conn: Connection, spec: OfferSpec, *, store_id: str, now: datetime, created_by: str) -> int:
    """Store an offer issued by ``store_id`` (redeemable in ``spec.stores``); returns its id."""
    mall_id, tz = offer_zone(conn, [store_id, *spec.stores])
    values = {k: getattr(spec, k) for k in (
        "title", "kind", "value", "min_spend_cents", "max_discount_cents", "valid_from", "valid_to", "valid_days",
        "budget_total_cents", "budget_daily_cents", "max_issued", "per_member_issue_limit", "per_member_use_limit",
        "stackable", "on_login")}
    offer_id = int(conn.execute(sa.insert(offers).values(
        mall_id=mall_id, store_id=store_id, timezone=tz, active=True, issued_count=0, spent_cents=0,
        created_at=now, created_by=created_by, **values).returning(offers.c.id)).scalar_one())
    conn.execute(sa.insert(offer_stores), [{"offer_id": offer_id, "store_id": s} for s in spec.stores])
    return offer_id


def _spec(row: Any) -> OfferSpec:
    return OfferSpec(title=row.title, kind=row.kind, value=row.value, stores=(), min_spend_cents=row.min_spend_cents,
                     max_discount_cents=row.max_discount_cents, valid_from=row.valid_from, valid_to=row.valid_to,
                     valid_days=row.valid_days, budget_total_cents=row.budget_total_cents,
                     budget_daily_cents=row.budget_daily_cents, max_issued=row.max_issued,
                     per_member_issue_limit=row.per_member_issue_limit,
                     per_member_use_limit=row.per_member_use_limit, stackable=row.stackable, on_login=row.on_login)


def offer_stores_of(conn: Connection, offer_id: int) -> frozenset[str]:
    return frozenset(conn.execute(sa.select(offer_stores.c.store_id)
                                  .where(offer_stores.c.offer_id == offer_id)).scalars())


def set_active(conn: Connection, offer_id: int, active: bool) -> bool:
    """Stop (or resume) issuing an offer; coupons already issued stay valid. Returns whether it exists."""
    return bool(conn.execute(sa.update(offers).where(offers.c.id == offer_id).values(active=active)).rowcount)


# --- issue ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A coupon just issued (or, for :func:`welcome_coupons`, one the member holds)."""

    code: str
    offer_id: int
    title: str
    kind: str
    value: int
    min_spend_cents: int
    starts_at: datetime
    expires_at: datetime

    @property
    def display_code(self) -> str:
        return codes.display(self.code)


def issue_coupon(conn: Connection, *, offer_id: int, member_id: int | None, store_id: str, channel: Channel,
                 now: datetime, issued_by: str | None = None,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> Issued:
    """Issue one coupon of ``offer_id`` from ``store_id`` (a store of the offer, or its issuing store) to
    ``member_id`` (``None``: an anonymous coupon, e.g. printed). Checking the member's marketing consent is the
    caller's (:func:`issue_to_member` does it). Raises :class:`Refused` (``unknown_offer``, ``offer_inactive``,
    ``wrong_store``,
    ``expired``, ``issue_limit``, ``member_limit``); the caller's transaction then holds nothing of it."""
    offer = conn.execute(sa.select(offers).where(offers.c.id == offer_id)).first()
    if offer is None:
        raise Refused("unknown_offer", "no such offer")
    stores = offer_stores_of(conn, offer_id)
    if store_id != offer.store_id and store_id not in stores:
        raise Refused("wrong_store", "this store does not issue this offer")
    window = coupon_window(_spec(offer), now, ZoneInfo(offer.timezone))
    if window.expires_at <= now or window.starts_at >= window.expires_at:
        raise Refused("expired", "the offer's validity is over")
    # counters first: each is one conditional UPDATE, so concurrent issues cannot overrun a limit
    took = conn.execute(sa.update(offers).where(
        offers.c.id == offer_id, offers.c.active.is_(True),
        sa.or_(offers.c.max_issued.is_(None), offers.c.issued_count < offers.c.max_issued))
        .values(issued_count=offers.c.issued_count + 1)).rowcount
    if took != 1:
        raise Refused("issue_limit" if offer.active else "offer_inactive")
    if member_id is not None:
        conn.execute(db.dialect_insert(conn, member_offers).values(member_id=member_id, offer_id=offer_id, issued=0,
                                                                  used=0).on_conflict_do_nothing())
        lim = offer.per_member_issue_limit
        took = conn.execute(sa.update(member_offers).where(
            member_offers.c.member_id == member_id, member_offers.c.offer_id == offer_id,
            sa.true() if lim is None else member_offers.c.issued < lim)
            .values(issued=member_offers.c.issued + 1)).rowcount
        if took != 1:
            raise Refused("member_limit", "this member has had as many of these coupons as allowed")
    code = codes.from_random(random_bytes(codes.RANDOM_BYTES))
    conn.execute(sa.insert(coupons).values(
        code=code, offer_id=offer_id, member_id=member_id, store_id=store_id, channel=channel, issued_by=issued_by,
        issued_at=now, starts_at=window.starts_at, expires_at=window.expires_at, state="issued", state_at=now))
    return Issued(code, offer_id, offer.title, offer.kind, offer.value, offer.min_spend_cents, window.starts_at,
                  window.expires_at)


def issue_batch(conn: Connection, *, offer_id: int, count: int, store_id: str, now: datetime,
                issued_by: str | None = None, channel: Channel = "staff",
                random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> list[str]:
    """Issue ``count`` anonymous coupons at once (printed coupons, a flyer run): the offer's issue cap is taken
    by one conditional UPDATE for the whole batch (all or none). Returns the codes."""
    if not 1 <= count <= 100_000:
        raise ValueError("count: 1 to 100,000")
    offer = conn.execute(sa.select(offers).where(offers.c.id == offer_id)).first()
    if offer is None:
        raise Refused("unknown_offer", "no such offer")
    if store_id != offer.store_id and store_id not in offer_stores_of(conn, offer_id):
        raise Refused("wrong_store", "this store does not issue this offer")
    window = coupon_window(_spec(offer), now, ZoneInfo(offer.timezone))
    if window.expires_at <= now or window.starts_at >= window.expires_at:
        raise Refused("expired", "the offer's validity is over")
    took = conn.execute(sa.update(offers).where(
        offers.c.id == offer_id, offers.c.active.is_(True),
        sa.or_(offers.c.max_issued.is_(None), offers.c.issued_count + count <= offers.c.max_issued))
        .values(issued_count=offers.c.issued_count + count)).rowcount
    if took != 1:
        raise Refused("issue_limit" if offer.active else "offer_inactive")
    out = [codes.from_random(random_bytes(codes.RANDOM_BYTES)) for _ in range(count)]
    conn.execute(sa.insert(coupons), [
        {"code": code, "offer_id": offer_id, "member_id": None, "store_id": store_id, "channel": channel,
         "issued_by": issued_by, "issued_at": now, "starts_at": window.starts_at, "expires_at": window.expires_at,
         "state": "issued", "state_at": now} for code in out])
    return out


def issue_to_member(conn: Connection, directory: MemberDirectory, *, offer_id: int, member_id: int, store_id: str,
                    channel: Channel, now: datetime, issued_by: str | None = None) -> Issued:
    """:func:`issue_coupon` to a member who consented to marketing; ``Refused("no_consent")`` otherwise."""
    if not directory.consents_to_marketing(conn, member_id):
        raise Refused("no_consent", "the member has not consented to marketing")
    return issue_coupon(conn, offer_id=offer_id, member_id=member_id, store_id=store_id, channel=channel, now=now,
                        issued_by=issued_by)


def issue_for_send(conn: Connection, *, send_id: int, offer_id: int, member_id: int, store_id: str | None,
                   key: str, now: datetime) -> Issued:
    """The coupon a campaign's send carries, in the caller's transaction (the send's lease): the one already tied
    to the send (``campaign_sends.coupon_id``: a retried or re-leased send, the same idempotency key ``key``), or
    one issued now by :func:`issue_coupon` — the offer's validity, its issue cap and the member's limit — and tied
    to the send. ``store_id``: the campaign's store (None for a mall's campaign: the offer's issuing store). The
    send's consents were checked by the contact policy. Raises :class:`Refused` like :func:`issue_coupon`; the
    caller's savepoint then holds nothing of it."""
    s = campaign_sends
    held = conn.execute(sa.select(*_COUPON_COLS).select_from(s).join(coupons, coupons.c.id == s.c.coupon_id)
                        .join(offers, offers.c.id == coupons.c.offer_id).where(s.c.id == send_id)).first()
    if held is not None:
        return _issued_of(held)
    if store_id is None:
        store_id = conn.execute(sa.select(offers.c.store_id).where(offers.c.id == offer_id)).scalar()
        if store_id is None:
            raise Refused("unknown_offer", "no such offer")
    issued = issue_coupon(conn, offer_id=offer_id, member_id=member_id, store_id=store_id, channel="campaign",
                          now=now, issued_by=key[:64])
    coupon_id = conn.execute(sa.select(coupons.c.id).where(coupons.c.code == issued.code)).scalar_one()
    conn.execute(sa.update(s).where(s.c.id == send_id).values(coupon_id=coupon_id))
    return issued


def welcome_coupons(engine: Engine, directory: MemberDirectory, *, member_id: int, store_id: str,
                    now: datetime) -> list[Issued]:
    """The Wi-Fi success page's coupons for a member who just logged in at ``store_id``: for every active
    ``on_login`` offer redeemable here, the member's live coupon of it, issued now if they have none and consented
    to marketing (members who did not consent get nothing, and nothing is stored). A refused issue (limit reached,
    budget, offer over) shows nothing and is not an error: the login page must never fail for marketing."""
    out: list[Issued] = []
    with engine.begin() as conn:
        # on the embedded SQLite the sensors write all the time: read and issue under the write lock
        db.write_first(conn)
        if not directory.consents_to_marketing(conn, member_id):
            return []
        rows = conn.execute(sa.select(offers.c.id).join(offer_stores, offer_stores.c.offer_id == offers.c.id).where(
            offers.c.on_login.is_(True), offers.c.active.is_(True), offer_stores.c.store_id == store_id)
            .order_by(offers.c.id)).scalars().all()
        for offer_id in rows:
            held = _live_coupon(conn, offer_id, member_id, now)
            if held is not None:
                out.append(held)
                continue
            try:
                with conn.begin_nested():
                    out.append(issue_coupon(conn, offer_id=offer_id, member_id=member_id, store_id=store_id,
                                            channel="login", now=now))
            except Refused:
                continue
    return out


def _issued_of(row: Any) -> Issued:
    return Issued(row.code, row.offer_id, row.title, row.kind, row.value, row.min_spend_cents, row.starts_at,
                  row.expires_at)


_COUPON_COLS = (coupons.c.code, coupons.c.offer_id, offers.c.title, offers.c.kind, offers.c.value,
                offers.c.min_spend_cents, coupons.c.starts_at, coupons.c.expires_at)


def _live_coupon(conn: Connection, offer_id: int, member_id: int, now: datetime) -> Issued | None:
    row = conn.execute(sa.select(*_COUPON_COLS).join(offers, offers.c.id == coupons.c.offer_id).where(
        coupons.c.offer_id == offer_id, coupons.c.member_id == member_id, coupons.c.state == "issued",
        coupons.c.expires_at > now).order_by(coupons.c.id).limit(1)).first()
    return None if row is None else _issued_of(row)


# --- redeem and roll back ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedeemRequest:
    """One redemption attempt. ``staff`` is who redeems (an admin/staff user name, or ``token:<name>``); the
    caller has checked that they may serve ``store_id`` (a staff user of store A at store B is refused there)."""

    store_id: str
    code: str
    idempotency_key: str
    basket_cents: int
    staff: str
    source: Source = "api"
    pos_txn_id: str | None = None

    def request_hash(self) -> str:
        try:
            code = codes.normalize(self.code)
        except codes.InvalidCode:
            code = self.code
        return _hash({"op": "redeem", "code": code, "amount_cents": self.basket_cents, "pos_txn_id": self.pos_txn_id})


@dataclass(frozen=True)
class RollbackRequest:
    """Undo the redemption recorded under ``original_key`` at ``store_id`` (a new ledger row with its own key)."""

    store_id: str
    original_key: str
    idempotency_key: str
    staff: str
    source: Source = "api"

    def request_hash(self) -> str:
        return _hash({"op": "rollback", "original_key": self.original_key})


@dataclass(frozen=True)
class Outcome:
    """A ledger row as the API answers it; ``replayed``: the answer to an earlier request with the same key."""

    id: int
    kind: str
    code: str
    offer_id: int
    store_id: str
    basket_cents: int
    discount_cents: int
    pos_txn_id: str | None
    ts: datetime
    reverses_id: int | None = None
    replayed: bool = False
    title: str = ""
    offer_kind: str = ""
    member_id: int | None = field(default=None, compare=False)

    def body(self) -> dict[str, Any]:
        """The API's JSON body (without ``member_id``: no member data leaves through the POS API)."""
        return {"id": self.id, "kind": self.kind, "code": codes.display(self.code), "offer_id": self.offer_id,
                "offer_kind": self.offer_kind, "title": self.title, "store": self.store_id,
                "basket_cents": self.basket_cents, "discount_cents": self.discount_cents,
                "pos_txn_id": self.pos_txn_id, "ts": self.ts.isoformat().replace("+00:00", "Z"),
                "reverses_id": self.reverses_id,
                "state": "redeemed" if self.kind == "redeem" else "issued"}


def _hash(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class _Lost(MarketingError):
    """Internal: the guard lost a race (the transaction is rolled back, then the key is looked up again)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _prior(conn: Connection, store_id: str, key: str, request_hash: str) -> Outcome | None:
    row = conn.execute(sa.select(redemptions, coupons.c.code, offers.c.title, offers.c.kind.label("offer_kind"))
                       .join(coupons, coupons.c.id == redemptions.c.coupon_id)
                       .join(offers, offers.c.id == redemptions.c.offer_id)
                       .where(redemptions.c.store_id == store_id, redemptions.c.idempotency_key == key)).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyMismatch("this idempotency key was used with another request")
    return Outcome(row.id, row.kind, row.code, row.offer_id, row.store_id, row.basket_cents, row.discount_cents,
                   row.pos_txn_id, row.ts, row.reverses_id, True, row.title, row.offer_kind, row.member_id)


def _with_replay(engine: Engine, store_id: str, key: str, request_hash: str,
                 attempt: Callable[[Connection], Outcome], conflict: str) -> Outcome:
    """Run ``attempt`` in a transaction. The fast path asks nothing first: a retry of a key already in the ledger
    fails on its way (the unique index, the guard, or a check) and is answered here, after the rollback, from the
    ledger: the first answer for the same body, :class:`IdempotencyMismatch` for another; else the refusal."""
    try:
        with engine.begin() as conn:
            return attempt(conn)
    except _Lost as lost:
        failure: Refused = Refused(lost.reason)
    except sa.exc.IntegrityError:
        failure = Refused(conflict)
    except Refused as refused:
        failure = refused
    return _replay_or_raise(engine, store_id, key, request_hash, failure)


def _replay_or_raise(engine: Engine, store_id: str, key: str, request_hash: str, failure: Refused) -> Outcome:
    """After a failed attempt (rolled back): the ledger's answer under this key if there is one, else ``failure``."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        prior = _prior(conn, store_id, key, request_hash)
    if prior is not None:
        return prior
    raise failure


def redeem_as(engine: Engine, user: AdminUser, req: RedeemRequest, now: datetime) -> Outcome:
    """:func:`redeem` for a logged-in user (the counter page): a staff user redeems only at their own store (an
    admin, mall or store user where they may see the store); anyone else is ``Refused("staff_store")`` (403)
    before anything is read or written. ``req.staff`` should be ``user.name``."""
    with engine.connect() as conn:
        zone = zone_of_store(conn, req.store_id)
    if zone is None or not user.can_serve_store(req.store_id, zone[0]):
        raise Refused("staff_store", "this user may not redeem coupons in this store")
    return redeem(engine, req, now)


def redeem(engine: Engine, req: RedeemRequest, now: datetime) -> Outcome:
    """Redeem a coupon: one transaction, all or nothing. Returns the ledger row (``replayed`` for a retry of an
    earlier request with the same key and body). Raises :class:`Refused` (404 ``unknown_code``/``invalid_code``,
    403 ``wrong_store``, 409 for the rest) or :class:`IdempotencyMismatch` (422)."""
    h = req.request_hash()
    try:
        code = codes.normalize(req.code)
    except codes.InvalidCode as exc:
        with engine.connect() as conn:
            prior = _prior(conn, req.store_id, req.idempotency_key, h)
        if prior is not None:
            return prior
        raise Refused("invalid_code", exc.reason) from exc

    if engine.dialect.name == "postgresql":
        try:
            fast = _redeem_in_one_statement(engine, req, code, h, now)
        except _Lost as lost:
            return _replay_or_raise(engine, req.store_id, req.idempotency_key, h, Refused(lost.reason))
        except sa.exc.IntegrityError:
            return _replay_or_raise(engine, req.store_id, req.idempotency_key, h, Refused("already_redeemed"))
        except Refused as refused:
            return _replay_or_raise(engine, req.store_id, req.idempotency_key, h, refused)
        if fast is not None:
            return fast

    def attempt(conn: Connection) -> Outcome:
        c, off, day = _decide(conn, req, code, now)
        # the ledger row first: a concurrent retry of the same key waits on the unique index, then replays;
        # then the guard: one conditional UPDATE decides who redeems a single-use code
        ledger = sa.insert(redemptions).values(
            kind="redeem", coupon_id=c.id, offer_id=c.offer_id, member_id=c.member_id, store_id=req.store_id,
            staff=req.staff, source=req.source, idempotency_key=req.idempotency_key, request_hash=h,
            pos_txn_id=req.pos_txn_id, basket_cents=req.basket_cents, discount_cents=off, day=day, ts=now)
        guard = sa.update(coupons).where(
            coupons.c.id == c.id, coupons.c.state == "issued", coupons.c.starts_at <= now, coupons.c.expires_at > now)
        if conn.dialect.name == "postgresql":
            # both in one statement (a data-modifying CTE, executed once): one round trip fewer per redemption
            ins = ledger.returning(redemptions.c.id).cte("ledger_row")
            rid_or_none = conn.execute(guard.values(state="redeemed", state_at=now,
                                                    redemption_id=sa.select(ins.c.id).scalar_subquery())
                                       .returning(coupons.c.redemption_id).add_cte(ins)).scalar()
            if rid_or_none is None:
                raise _Lost("already_redeemed")
            rid = int(rid_or_none)
        else:
            rid = int(conn.execute(ledger.returning(redemptions.c.id)).scalar_one())
            if conn.execute(guard.values(state="redeemed", state_at=now, redemption_id=rid)).rowcount != 1:
                raise _Lost("already_redeemed")
        _move_counters(conn, c.offer_id, c.member_id, day, off, +1, c.per_member_use_limit, c.budget_total_cents,
                       c.budget_daily_cents)
        return Outcome(rid, "redeem", code, c.offer_id, req.store_id, req.basket_cents, off, req.pos_txn_id, now,
                       None, False, c.title, c.kind, c.member_id)

    return _with_replay(engine, req.store_id, req.idempotency_key, h, attempt, "already_redeemed")


#: the coupon, its offer's terms and whether the offer names the store (built once: every redemption reads it)
_DECIDE = (sa.select(coupons, offers.c.kind, offers.c.value, offers.c.min_spend_cents, offers.c.max_discount_cents,
                     offers.c.timezone, offers.c.stackable, offers.c.per_member_use_limit, offers.c.budget_total_cents,
                     offers.c.budget_daily_cents, offers.c.title,
                     sa.exists().where(offer_stores.c.offer_id == coupons.c.offer_id,
                                       offer_stores.c.store_id == sa.bindparam("store_id")).label("here"))
           .join(offers, offers.c.id == coupons.c.offer_id).where(coupons.c.code == sa.bindparam("code")))


def _decide(conn: Connection, req: RedeemRequest, code: str, now: datetime) -> tuple[Any, int, date]:
    """Read the coupon and its offer and decide in Python (pure core) whether it may be redeemed here now:
    ``(row, discount, local day)``, or :class:`Refused` / :class:`_Lost`. The decision is re-checked by the guard
    in SQL (state and validity), so reading it outside the writing transaction changes nothing."""
    c = conn.execute(_DECIDE, {"code": code, "store_id": req.store_id}).first()
    if c is None:
        raise Refused("unknown_code", "no coupon has this code")
    # the stores as far as this decision needs them: this store, if the offer names it
    view = CouponView(c.state, c.starts_at, c.expires_at, frozenset({req.store_id} if c.here else ()), c.kind,
                      c.value, c.min_spend_cents, c.max_discount_cents)
    reason = check_redeemable(view, req.store_id, now, req.basket_cents)
    if reason is not None:
        raise _Lost(reason) if reason == "already_redeemed" else Refused(reason)
    if req.pos_txn_id is not None:
        _check_stacking(conn, req.store_id, req.pos_txn_id, bool(c.stackable))
    off = discount_cents(c.kind, c.value, req.basket_cents, c.max_discount_cents)
    return c, off, local_day(now, ZoneInfo(c.timezone))


def _moves_counters(c: Any, off: int) -> bool:
    """Whether redeeming this coupon moves a counter (:func:`_move_counters`): then it needs a transaction."""
    return ((c.member_id is not None and c.per_member_use_limit is not None)
            or (off != 0 and (c.budget_total_cents is not None or c.budget_daily_cents is not None)))


#: PostgreSQL: the guard and the ledger row in one statement, so in one implicit transaction (autocommit: no BEGIN
#: and COMMIT round trips; the commit is as durable as any). The guard comes first and takes the ledger row's id
#: from the sequence; the ledger row is inserted only if the guard matched (zero rows: nothing is written). A
#: concurrent attempt at the same code waits on the coupon's row lock and then matches nothing; a concurrent retry
#: of the same key (another code) fails on the ledger's unique index and the whole statement is undone. The text is
#: constant, so psycopg prepares it after a few executions.
_REDEEM_ONE = sa.text("""
WITH guard AS (
  UPDATE coupons SET state = 'redeemed', state_at = :now,
                     redemption_id = nextval(pg_get_serial_sequence('redemptions', 'id'))
  WHERE id = :coupon_id AND state = 'issued' AND starts_at <= :now AND expires_at > :now
  RETURNING redemption_id)
INSERT INTO redemptions (id, kind, coupon_id, offer_id, member_id, store_id, staff, source, idempotency_key,
                         request_hash, pos_txn_id, basket_cents, discount_cents, day, ts)
SELECT redemption_id, 'redeem', :coupon_id, :offer_id, CAST(:member_id AS integer), CAST(:store_id AS varchar),
       CAST(:staff AS varchar), CAST(:source AS varchar), CAST(:key AS varchar), CAST(:hash AS varchar),
       CAST(:pos_txn_id AS varchar), :basket, :off, :day, :now
FROM guard
RETURNING id""").bindparams(
    sa.bindparam("now", type_=db.TS), sa.bindparam("coupon_id", type_=sa.Integer),
    sa.bindparam("offer_id", type_=sa.Integer), sa.bindparam("basket", type_=sa.BigInteger),
    sa.bindparam("off", type_=sa.BigInteger), sa.bindparam("day", type_=sa.Date))


def _redeem_in_one_statement(engine: Engine, req: RedeemRequest, code: str, h: str,
                             now: datetime) -> Outcome | None:
    """The redemption in two round trips on PostgreSQL when it moves no counter (the offer limits neither the
    member's uses nor, for a non-zero discount, the budgets): the read and decision (:func:`_decide`), then
    :data:`_REDEEM_ONE`. ``None``: it moves counters, use the transaction of :func:`redeem`. Raises like it."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        c, off, day = _decide(conn, req, code, now)
        if _moves_counters(c, off):
            return None
        rid = conn.execute(_REDEEM_ONE, {
            "now": now, "coupon_id": c.id, "offer_id": c.offer_id, "member_id": c.member_id,
            "store_id": req.store_id, "staff": req.staff, "source": req.source, "key": req.idempotency_key,
            "hash": h, "pos_txn_id": req.pos_txn_id, "basket": req.basket_cents, "off": off, "day": day}).scalar()
    if rid is None:
        raise _Lost("already_redeemed")
    return Outcome(int(rid), "redeem", code, c.offer_id, req.store_id, req.basket_cents, off, req.pos_txn_id, now,
                   None, False, c.title, c.kind, c.member_id)


def _check_stacking(conn: Connection, store_id: str, pos_txn_id: str, stackable: bool) -> None:
    """A coupon that does not stack may not share a POS transaction with another redeemed coupon (nor may any
    coupon join one that does not stack)."""
    reversed_ = sa.select(redemptions.c.reverses_id).where(redemptions.c.reverses_id.is_not(None))
    others = conn.execute(sa.select(offers.c.stackable).join(redemptions, redemptions.c.offer_id == offers.c.id)
                          .where(redemptions.c.store_id == store_id, redemptions.c.pos_txn_id == pos_txn_id,
                                 redemptions.c.kind == "redeem", redemptions.c.id.not_in(reversed_))).scalars().all()
    if others and (not stackable or not all(others)):
        raise Refused("not_stackable", "this coupon cannot be combined with another on one transaction")


def _move_counters(conn: Connection, offer_id: int, member_id: int | None, day: date, off: int, sign: int,
                   use_limit: int | None, budget_total: int | None, budget_daily: int | None) -> None:
    """Per-member uses and the budgets, each by one relative conditional UPDATE (``sign`` +1 redeem, -1 undo).
    Counters an offer does not limit are not kept here (the ledger has the figures), so redemptions of an
    unlimited offer do not queue on its row."""
    mo = member_offers
    if member_id is not None and use_limit is not None:
        if sign > 0:
            ok = conn.execute(sa.update(mo).where(mo.c.member_id == member_id, mo.c.offer_id == offer_id,
                                                  mo.c.used < use_limit).values(used=mo.c.used + 1)).rowcount
            if ok != 1:
                raise Refused("use_limit", "this member has used this offer as often as allowed")
        else:
            conn.execute(sa.update(mo).where(mo.c.member_id == member_id, mo.c.offer_id == offer_id, mo.c.used > 0)
                         .values(used=mo.c.used - 1))
    if off == 0:
        return
    if budget_total is not None:
        if sign > 0:
            ok = conn.execute(sa.update(offers).where(offers.c.id == offer_id,
                                                      offers.c.spent_cents + off <= budget_total)
                              .values(spent_cents=offers.c.spent_cents + off)).rowcount
            if ok != 1:
                raise Refused("budget_exhausted", "the offer's budget is spent")
        else:
            conn.execute(sa.update(offers).where(offers.c.id == offer_id, offers.c.spent_cents >= off)
                         .values(spent_cents=offers.c.spent_cents - off))
    if budget_daily is not None:
        od = offer_days
        if sign > 0:
            conn.execute(db.dialect_insert(conn, od).values(offer_id=offer_id, day=day, spent_cents=0)
                         .on_conflict_do_nothing())
            ok = conn.execute(sa.update(od).where(od.c.offer_id == offer_id, od.c.day == day,
                                                  od.c.spent_cents + off <= budget_daily)
                              .values(spent_cents=od.c.spent_cents + off)).rowcount
            if ok != 1:
                raise Refused("daily_budget_exhausted", "the offer's budget for today is spent")
        else:
            conn.execute(sa.update(od).where(od.c.offer_id == offer_id, od.c.day == day, od.c.spent_cents >= off)
                         .values(spent_cents=od.c.spent_cents - off))


def rollback(engine: Engine, req: RollbackRequest, now: datetime) -> Outcome:
    """Undo a redemption (the till voided the sale): a ``rollback`` ledger row referencing the original, the coupon
    back to ``issued``, per-member uses and budgets moved back. Raises :class:`Refused` (404
    ``unknown_redemption``; 409 ``already_rolled_back``) or :class:`IdempotencyMismatch`."""
    h = req.request_hash()

    def attempt(conn: Connection) -> Outcome:
        o = conn.execute(sa.select(redemptions, coupons.c.code, offers.c.title, offers.c.kind.label("offer_kind"),
                                   offers.c.per_member_use_limit, offers.c.budget_total_cents,
                                   offers.c.budget_daily_cents)
                         .join(coupons, coupons.c.id == redemptions.c.coupon_id)
                         .join(offers, offers.c.id == redemptions.c.offer_id)
                         .where(redemptions.c.store_id == req.store_id,
                                redemptions.c.idempotency_key == req.original_key,
                                redemptions.c.kind == "redeem")).first()
        if o is None:
            raise Refused("unknown_redemption", "no redemption under this key in this store")
        if conn.execute(sa.select(redemptions.c.id).where(redemptions.c.reverses_id == o.id)).first() is not None:
            raise _Lost("already_rolled_back")
        rid = int(conn.execute(sa.insert(redemptions).values(
            kind="rollback", coupon_id=o.coupon_id, offer_id=o.offer_id, member_id=o.member_id,
            store_id=req.store_id, staff=req.staff, source=req.source, idempotency_key=req.idempotency_key,
            request_hash=h, pos_txn_id=o.pos_txn_id, basket_cents=o.basket_cents, discount_cents=o.discount_cents,
            day=o.day, ts=now, reverses_id=o.id).returning(redemptions.c.id)).scalar_one())
        # back to issued only if the redemption being undone is still the one in force
        back = conn.execute(sa.update(coupons).where(
            coupons.c.id == o.coupon_id, coupons.c.state == "redeemed", coupons.c.redemption_id == o.id)
            .values(state="issued", state_at=now, redemption_id=None)).rowcount
        if back != 1:
            raise _Lost("already_rolled_back")
        _move_counters(conn, o.offer_id, o.member_id, o.day, o.discount_cents, -1, o.per_member_use_limit,
                       o.budget_total_cents, o.budget_daily_cents)
        return Outcome(rid, "rollback", o.code, o.offer_id, req.store_id, o.basket_cents, o.discount_cents,
                       o.pos_txn_id, now, o.id, False, o.title, o.offer_kind, o.member_id)

    return _with_replay(engine, req.store_id, req.idempotency_key, h, attempt, "already_rolled_back")


# --- other state changes and reads ------------------------------------------------------------------------------


def void_coupon(conn: Connection, code: str, now: datetime) -> bool:
    """Void an issued coupon (never a redeemed one: roll its redemption back first). Returns whether it was."""
    return bool(conn.execute(sa.update(coupons).where(coupons.c.code == codes.normalize(code),
                                                      coupons.c.state == "issued")
                             .values(state="voided", state_at=now)).rowcount)


def expire_due(conn: Connection, now: datetime, limit: int | None = None) -> int:
    """Mark issued coupons past their end ``expired`` (the API already reports them so; this keeps the table
    honest for reports): at most ``limit`` of them (the earliest ends first) when given, so that a caller can sweep
    in short transactions. Idempotent: a coupon already expired, redeemed or voided is not touched, and a redemption
    racing the sweep cannot win either way (its guard requires ``expires_at > now``). Returns how many."""
    due = sa.and_(coupons.c.state == "issued", coupons.c.expires_at <= now)
    # the earliest ends first: a range scan of the partial index of issued coupons (ix_coupons_issued_expires_at)
    where = due if limit is None else sa.and_(due, coupons.c.id.in_(
        sa.select(coupons.c.id).where(due).order_by(coupons.c.expires_at).limit(limit)))
    return int(conn.execute(sa.update(coupons).where(where).values(state="expired", state_at=now)).rowcount)


@dataclass(frozen=True)
class CouponDetails:
    """What the counter shows before redeeming: the coupon, its offer, and whether it applies here now."""

    code: str
    state: str
    offer_id: int
    title: str
    kind: str
    value: int
    min_spend_cents: int
    max_discount_cents: int | None
    stores: frozenset[str]
    starts_at: datetime
    expires_at: datetime
    member_id: int | None
    #: ``None``: redeemable here now for a basket of at least ``min_spend_cents``
    refusal: str | None


def coupon_details(conn: Connection, code: str, store_id: str, now: datetime) -> CouponDetails | None:
    """The coupon with this code as seen from ``store_id`` now (``None``: no such code). The refusal is computed
    for a basket of exactly the minimum spend."""
    norm = codes.normalize(code)
    c = conn.execute(sa.select(coupons, offers.c.title, offers.c.kind, offers.c.value, offers.c.min_spend_cents,
                               offers.c.max_discount_cents).join(offers, offers.c.id == coupons.c.offer_id)
                     .where(coupons.c.code == norm)).first()
    if c is None:
        return None
    stores = offer_stores_of(conn, c.offer_id)
    view = CouponView(c.state, c.starts_at, c.expires_at, stores, c.kind, c.value, c.min_spend_cents,
                      c.max_discount_cents)
    return CouponDetails(norm, state_at(c.state, c.expires_at, now), c.offer_id, c.title, c.kind, c.value,
                         c.min_spend_cents, c.max_discount_cents, stores, c.starts_at, c.expires_at, c.member_id,
                         check_redeemable(view, store_id, now, c.min_spend_cents))


def member_coupons(conn: Connection, member_id: int, now: datetime) -> list[dict[str, Any]]:
    """A member's coupons for the member card, newest first: code (display form), title, kind, value, min spend,
    state as of ``now``, validity, the stores."""
    rows = conn.execute(sa.select(coupons.c.code, coupons.c.state, coupons.c.expires_at, coupons.c.starts_at,
                                  coupons.c.offer_id, offers.c.title, offers.c.kind, offers.c.value,
                                  offers.c.min_spend_cents).join(offers, offers.c.id == coupons.c.offer_id)
                        .where(coupons.c.member_id == member_id).order_by(coupons.c.id.desc())).all()
    return [{"code": codes.display(r.code), "state": state_at(r.state, r.expires_at, now), "offer_id": r.offer_id,
             "title": r.title, "kind": r.kind, "value": r.value, "min_spend_cents": r.min_spend_cents,
             "starts_at": r.starts_at, "expires_at": r.expires_at,
             "stores": sorted(offer_stores_of(conn, r.offer_id))} for r in rows]


def zone_of_store(conn: Connection, store_id: str) -> tuple[str, ZoneInfo] | None:
    """``(mall_id, zone)`` of a store, or ``None`` if there is no such store."""
    row = conn.execute(sa.select(stores_t.c.mall_id, stores_t.c.timezone).where(stores_t.c.id == store_id)).first()
    return None if row is None else (str(row.mall_id), ZoneInfo(row.timezone))
