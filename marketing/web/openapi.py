"""Marketing's part of the served OpenAPI document (pure data): the POS and integration API under ``/api/v1/``.

The portal's document merges it with :func:`merge_into` (paths, schemas and the ``bearerToken`` scheme); a test
checks every route of :mod:`marketing.web.api` is described, and the fuzz test (schemathesis) runs it.
"""
from __future__ import annotations

import copy
from typing import Any

from marketing.core.offers import KINDS, MAX_CENTS


def _err(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MarketingError"}}}}


_AUTH = {"401": _err("no token, or an unknown or revoked one"),
         "403": _err("the token may not act for this store (or the coupon may not be used there)")}
_STORE = {"name": "store_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}


def _post(summary: str, schema: dict[str, Any], ok: dict[str, Any], errors: dict[str, Any],
          replay: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    responses: dict[str, Any] = {"201": ok}
    if replay is not None:
        responses["200"] = replay
    responses.update(errors)
    responses.update(_AUTH)
    op: dict[str, Any] = {"tags": ["marketing"], "summary": summary, "security": [{"bearerToken": []}],
                          "parameters": [_STORE],
                          "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                          "responses": responses}
    if description:
        op["description"] = description
    return {"post": op}


def _ok(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


_CENTS = {"type": "integer", "minimum": 0, "maximum": MAX_CENTS}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/stores/{store_id}/offers": _post(
        "Create an offer issued by this store (redeemable in the stores it names, of the same mall)",
        {"$ref": "#/components/schemas/OfferIn"},
        {"description": "created", "content": {"application/json": {"schema": {
            "type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}}}},
        {"422": _err("a field is missing or wrong (error: invalid_offer, message names the field)")}),
    "/api/v1/stores/{store_id}/coupons": _post(
        "Issue a coupon of an offer to the member with this phone, if they consented to marketing",
        {"type": "object", "additionalProperties": False, "required": ["offer_id", "phone"],
         "properties": {"offer_id": {"type": "integer", "minimum": 1}, "phone": {"type": "string", "maxLength": 32}}},
        _ok("#/components/schemas/CouponIssued", "issued"),
        {"404": _err("no such offer"), "409": _err("not a member, no marketing consent, or a limit reached"),
         "422": _err("malformed body")}),
    "/api/v1/stores/{store_id}/coupons/{code}": {"get": {
        "tags": ["marketing"], "summary": "A coupon as this store sees it now: its offer and whether it applies",
        "security": [{"bearerToken": []}],
        "parameters": [_STORE, {"name": "code", "in": "path", "required": True,
                                "schema": {"type": "string", "maxLength": 64}}],
        "responses": {"200": _ok("#/components/schemas/CouponDetails", "the coupon"),
                      "404": _err("unknown code, or not a code (check character wrong)"), **_AUTH}}},
    "/api/v1/stores/{store_id}/redemptions": _post(
        "Redeem a coupon (idempotent on idempotency_key per store)",
        {"type": "object", "additionalProperties": False, "required": ["code", "idempotency_key", "amount_cents"],
         "properties": {"code": {"type": "string", "maxLength": 64, "example": "7K2M-Q9XD-4TRB-VWHZ"},
                        "idempotency_key": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"},
                        "amount_cents": {**_CENTS, "description": "the basket before the discount, in cents"},
                        "pos_txn_id": {"type": "string", "minLength": 1, "maxLength": 64, "nullable": True}}},
        _ok("#/components/schemas/Redemption", "redeemed"),
        {"404": _err("unknown code"),
         "409": _err("already redeemed, voided, expired, not yet valid, below the minimum spend, a limit or budget "
                     "reached, or not stackable with a coupon already on this POS transaction"),
         "422": _err("malformed body, or this idempotency key was used with another body")},
        replay=_ok("#/components/schemas/Redemption", "the first answer to this idempotency key and body"),
        description="A retry with the same key and body answers 200 with the first answer; nothing is redeemed "
                    "twice. A coupon of another store's offer (or another mall's) is 403."),
    "/api/v1/stores/{store_id}/redemptions/rollback": _post(
        "Undo a redemption (the sale was voided): the coupon is issued again, limits and budgets move back",
        {"type": "object", "additionalProperties": False, "required": ["idempotency_key", "original_idempotency_key"],
         "properties": {"idempotency_key": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"},
                        "original_idempotency_key": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$"}}},
        _ok("#/components/schemas/Redemption", "rolled back (kind: rollback)"),
        {"404": _err("no redemption under original_idempotency_key in this store"),
         "409": _err("already rolled back"), "422": _err("malformed body, or the key was used with another body")},
        replay=_ok("#/components/schemas/Redemption", "the first answer to this idempotency key and body")),
    "/api/v1/stores/{store_id}/transactions": _post(
        "Record a POS sale or refund (idempotent on txn_id per store)",
        {"$ref": "#/components/schemas/TransactionIn"},
        _ok("#/components/schemas/Transaction", "recorded"),
        {"409": _err("a refund of a sale this store has not recorded, or larger than it"),
         "422": _err("malformed body, or this txn_id was recorded with other content")},
        replay=_ok("#/components/schemas/Transaction", "recorded before with the same content"),
        description="The member is linked only deterministically: member_qr (the member card's QR), the holder of "
                    "coupon_code, or a member's phone. The phone is never stored with the sale."),
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "MarketingError": {"type": "object", "required": ["error", "message"],
                       "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
    "OfferIn": {"type": "object", "additionalProperties": False, "required": ["title", "kind"], "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "kind": {"type": "string", "enum": list(KINDS)},
        "value": {"type": "integer", "minimum": 0,
                  "description": "amount_off: cents off; percent_off: 1-100; gift: 0"},
        "stores": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                   "description": "where it may be redeemed (default: this store); one mall, one time zone"},
        "min_spend_cents": _CENTS, "max_discount_cents": {**_CENTS, "minimum": 1},
        "valid_from": {"type": "string", "format": "date"}, "valid_to": {"type": "string", "format": "date"},
        "valid_days": {"type": "integer", "minimum": 1, "maximum": 3660,
                       "description": "N local days from issue (1 = the day of issue), instead of a fixed range"},
        "budget_total_cents": {"type": "integer", "minimum": 0, "nullable": True},
        "budget_daily_cents": {"type": "integer", "minimum": 0, "nullable": True},
        "max_issued": {"type": "integer", "minimum": 0, "nullable": True},
        "per_member_issue_limit": {"type": "integer", "minimum": 1, "nullable": True},
        "per_member_use_limit": {"type": "integer", "minimum": 1, "nullable": True},
        "stackable": {"type": "boolean"}, "on_login": {"type": "boolean"}}},
    "CouponIssued": {"type": "object", "required": ["code", "offer_id", "expires_at"], "properties": {
        "code": {"type": "string"}, "offer_id": {"type": "integer"}, "title": {"type": "string"},
        "starts_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"}}},
    "CouponDetails": {"type": "object", "required": ["code", "state", "redeemable"], "properties": {
        "code": {"type": "string"}, "state": {"type": "string", "enum": ["issued", "redeemed", "expired", "voided"]},
        "offer_id": {"type": "integer"}, "title": {"type": "string"}, "kind": {"type": "string"},
        "value": {"type": "integer"}, "min_spend_cents": {"type": "integer"},
        "max_discount_cents": {"type": "integer", "nullable": True},
        "starts_at": {"type": "string"}, "expires_at": {"type": "string"},
        "redeemable": {"type": "boolean"}, "refusal": {"type": "string", "nullable": True}}},
    "Redemption": {"type": "object", "required": ["id", "kind", "code", "discount_cents"], "properties": {
        "id": {"type": "integer"}, "kind": {"type": "string", "enum": ["redeem", "rollback"]},
        "code": {"type": "string"}, "offer_id": {"type": "integer"}, "offer_kind": {"type": "string"},
        "title": {"type": "string"}, "store": {"type": "string"}, "basket_cents": {"type": "integer"},
        "discount_cents": {"type": "integer"}, "pos_txn_id": {"type": "string", "nullable": True},
        "ts": {"type": "string"}, "reverses_id": {"type": "integer", "nullable": True},
        "state": {"type": "string"}}},
    "TransactionIn": {"type": "object", "additionalProperties": False, "required": ["txn_id", "ts", "amount_cents"],
                      "properties": {
        "txn_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "ts": {"type": "string", "example": "2026-12-06T14:03:00+08:00",
               "description": "ISO 8601; without an offset, the store's local time"},
        "amount_cents": _CENTS, "kind": {"type": "string", "enum": ["sale", "refund"]},
        "refund_of": {"type": "string", "maxLength": 64, "description": "a refund's sale (its txn_id)"},
        "member_qr": {"type": "string", "maxLength": 512}, "coupon_code": {"type": "string", "maxLength": 32},
        "phone": {"type": "string", "maxLength": 32}, "staff": {"type": "string", "maxLength": 80}}},
    "Transaction": {"type": "object", "required": ["id", "txn_id", "kind", "amount_cents"], "properties": {
        "id": {"type": "integer"}, "txn_id": {"type": "string"}, "kind": {"type": "string"},
        "amount_cents": {"type": "integer"}, "ts": {"type": "string"},
        "refund_of": {"type": "string", "nullable": True}, "member_matched": {"type": "boolean"},
        "match": {"type": "string", "nullable": True}}},
}

OPENAPI_SECURITY_SCHEMES: dict[str, Any] = {
    "bearerToken": {"type": "http", "scheme": "bearer", "description": "a token from `keliu token create`"},
}


def merge_into(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with marketing's paths, schemas and security scheme; refuses to overwrite any."""
    out = copy.deepcopy(document)
    components = out.setdefault("components", {})
    for target, extra in ((out.setdefault("paths", {}), OPENAPI_PATHS),
                          (components.setdefault("schemas", {}), OPENAPI_SCHEMAS),
                          (components.setdefault("securitySchemes", {}), OPENAPI_SECURITY_SCHEMES)):
        clash = sorted(set(target) & set(extra))
        if clash:
            raise ValueError(f"OpenAPI document already defines {clash}")
        target.update(copy.deepcopy(extra))
    return out
