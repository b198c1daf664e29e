"""The JSON API for POS systems and integrations under ``/api/v1/stores/{store}/…`` (an edge: Flask).

Every request carries ``Authorization: Bearer <token>`` (``keliu token create``): none or an unknown/revoked token
→ 401; a token of another store or mall → 403 (the dashboard's tenancy rules: a store token acts for its store, a
mall token for every store of its mall). A body that is not the documented JSON → 422. Answers are JSON;
errors are ``{"error": <reason>, "message": <text>}``. The OpenAPI description is :mod:`marketing.web.openapi`.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.engine import Engine

from keliu.accounts import tokens
from marketing.core import codes
from marketing.core.offers import MAX_CENTS, OfferInvalid, parse_offer
from marketing.core.pos import RowInvalid, parse_api_body
from marketing.errors import MarketingError
from marketing.members import MemberDirectory, MemberTokens
from marketing.store import coupons as store
from marketing.store.sales import TxnMismatch, record_transaction

bp = Blueprint("marketing_api", __name__)

KEY = re.compile(r"[\x21-\x7e]{1,128}")
stores_t = sa.table("stores", sa.column("id"), sa.column("mall_id"))


@dataclass(frozen=True)
class MarketingServices:
    """What the marketing blueprints use, built once by :func:`marketing.init_app`."""

    engine: Engine
    clock: Callable[[], float]
    members: MemberDirectory
    member_tokens: MemberTokens | None = None
    #: the bearer tokens this process has checked (:class:`keliu.accounts.tokens.PrincipalCache`: 5 s)
    principals: tokens.PrincipalCache = field(default_factory=tokens.PrincipalCache)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=UTC)


def services() -> MarketingServices:
    return cast(MarketingServices, current_app.extensions["keliu.marketing"])


class ApiError(MarketingError):
    """An answer other than success (internal to this module: turned into a JSON error by the handler)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    resp = jsonify(error=exc.error, message=exc.message)
    resp.status_code = exc.status
    if exc.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="keliu"'
    return resp


def _refused(exc: store.Refused) -> ApiError:
    return ApiError(exc.status, exc.reason, str(exc))


def _principal(store_id: str) -> tokens.ApiPrincipal:
    """The caller, allowed to act for ``store_id``; else 401/403."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> (keliu token create)")
    svc = services()
    who, mall = svc.principals.principal_at(svc.engine, token.strip(), store_id)
    if who is None:
        raise ApiError(401, "unauthorized", "unknown or revoked token")
    if mall is None or not who.can_act_for(store_id, mall):
        raise ApiError(403, "forbidden", "this token may not act for this store")
    return who


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(422, "malformed", "the body must be a JSON object (Content-Type: application/json)")
    return body


def _json(obj: dict[str, Any], status: int) -> Response:
    resp = jsonify(obj)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/api/v1/stores/<store_id>/offers", methods=["POST"])
def create_offer(store_id: str) -> Response:
    who = _principal(store_id)
    body = _body()
    svc = services()
    with svc.engine.begin() as conn:
        mall = conn.execute(sa.select(stores_t.c.mall_id).where(stores_t.c.id == store_id)).scalar()
        allowed = frozenset(s for s in conn.execute(sa.select(stores_t.c.id).where(stores_t.c.mall_id == mall))
                            .scalars() if who.role == "mall" or s == store_id or _named(body, s))
        try:
            spec = parse_offer(body, store_id, allowed)
            offer_id = store.create_offer(conn, spec, store_id=store_id, now=svc.now(), created_by=who.actor)
        except OfferInvalid as exc:
            raise ApiError(422, "invalid_offer", str(exc)) from exc
    return _json({"id": offer_id}, 201)


def _named(body: dict[str, Any], store_id: str) -> bool:
    """A store may name other stores of its mall as redeeming stores (a trade-area offer it pays for)."""
    stores = body.get("stores")
    return isinstance(stores, list) and store_id in stores


@bp.route("/api/v1/stores/<store_id>/coupons", methods=["POST"])
def issue(store_id: str) -> Response:
    who = _principal(store_id)
    body = _body()
    offer_id, phone = body.get("offer_id"), body.get("phone")
    if (set(body) - {"offer_id", "phone"} or isinstance(offer_id, bool) or not isinstance(offer_id, int)
            or not 1 <= offer_id < 2**31 or not isinstance(phone, str) or not 1 <= len(phone) <= 32):
        raise ApiError(422, "malformed", "expected {\"offer_id\": integer, \"phone\": string}")
    svc = services()
    try:
        with svc.engine.begin() as conn:
            member = svc.members.member_by_phone(conn, phone)
            if member is None:
                raise store.Refused("not_a_member", "no member with this phone number")
            got = store.issue_to_member(conn, svc.members, offer_id=offer_id, member_id=member, store_id=store_id,
                                        channel="api", now=svc.now(), issued_by=who.actor)
    except store.Refused as exc:
        raise _refused(exc) from exc
    return _json({"code": got.display_code, "offer_id": got.offer_id, "title": got.title,
                  "starts_at": _iso(got.starts_at), "expires_at": _iso(got.expires_at)}, 201)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _key(body: dict[str, Any], name: str = "idempotency_key") -> str:
    key = body.get(name)
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ApiError(422, "malformed", f"{name}: 1 to 128 printable ASCII characters")
    return key


@bp.route("/api/v1/stores/<store_id>/redemptions", methods=["POST"])
def redeem(store_id: str) -> Response:
    who = _principal(store_id)
    body = _body()
    unknown = set(body) - {"code", "idempotency_key", "amount_cents", "pos_txn_id"}
    code, amount, txn = body.get("code"), body.get("amount_cents"), body.get("pos_txn_id")
    key = _key(body)
    if (unknown or not isinstance(code, str) or not 1 <= len(code) <= 64
            or isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_CENTS
            or (txn is not None and (not isinstance(txn, str) or not 1 <= len(txn) <= 64))):
        raise ApiError(422, "malformed", "expected {\"code\": string, \"idempotency_key\": string, "
                                         "\"amount_cents\": integer ≥ 0, \"pos_txn_id\"?: string}")
    svc = services()
    req = store.RedeemRequest(store_id=store_id, code=code, idempotency_key=key, basket_cents=amount,
                              staff=who.actor, source="pos" if txn else "api", pos_txn_id=txn)
    try:
        out = store.redeem(svc.engine, req, svc.now())
    except store.IdempotencyMismatch as exc:
        raise ApiError(422, "idempotency_key_reused", str(exc)) from exc
    except store.Refused as exc:
        raise _refused(exc) from exc
    return _json(out.body(), 200 if out.replayed else 201)


@bp.route("/api/v1/stores/<store_id>/redemptions/rollback", methods=["POST"])
def rollback(store_id: str) -> Response:
    who = _principal(store_id)
    body = _body()
    if set(body) - {"idempotency_key", "original_idempotency_key"}:
        raise ApiError(422, "malformed", "expected {\"idempotency_key\", \"original_idempotency_key\"}")
    key, original = _key(body), _key(body, "original_idempotency_key")
    svc = services()
    req = store.RollbackRequest(store_id=store_id, original_key=original, idempotency_key=key, staff=who.actor)
    try:
        out = store.rollback(svc.engine, req, svc.now())
    except store.IdempotencyMismatch as exc:
        raise ApiError(422, "idempotency_key_reused", str(exc)) from exc
    except store.Refused as exc:
        raise _refused(exc) from exc
    return _json(out.body(), 200 if out.replayed else 201)


@bp.route("/api/v1/stores/<store_id>/coupons/<code>", methods=["GET"])
def coupon(store_id: str, code: str) -> Response:
    _principal(store_id)
    svc = services()
    try:
        with svc.engine.connect() as conn:
            c = store.coupon_details(conn, code, store_id, svc.now())
    except codes.InvalidCode as exc:
        raise ApiError(404, "invalid_code", exc.reason) from exc
    if c is None:
        raise ApiError(404, "unknown_code", "no coupon has this code")
    if store_id not in c.stores:
        raise ApiError(403, "wrong_store", "this coupon may not be redeemed in this store")
    return _json({"code": codes.display(c.code), "state": c.state, "offer_id": c.offer_id, "title": c.title,
                  "kind": c.kind, "value": c.value, "min_spend_cents": c.min_spend_cents,
                  "max_discount_cents": c.max_discount_cents, "starts_at": _iso(c.starts_at),
                  "expires_at": _iso(c.expires_at), "redeemable": c.refusal is None, "refusal": c.refusal}, 200)


@bp.route("/api/v1/stores/<store_id>/transactions", methods=["POST"])
def transaction(store_id: str) -> Response:
    _principal(store_id)
    body = _body()
    svc = services()
    with svc.engine.connect() as conn:
        zone = store.zone_of_store(conn, store_id)
    assert zone is not None  # _principal checked the store exists
    try:
        row = parse_api_body(body, zone[1])
    except RowInvalid as exc:
        raise ApiError(422, "malformed", str(exc)) from exc
    try:
        out = record_transaction(svc.engine, store_id, row, svc.now(), directory=svc.members,
                                 tokens=svc.member_tokens)
    except TxnMismatch as exc:
        raise ApiError(422, "txn_id_reused", str(exc)) from exc
    except store.Refused as exc:
        raise _refused(exc) from exc
    return _json(out.body(), 200 if out.replayed else 201)
