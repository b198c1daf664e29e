"""The OpenAPI 3.0 document of every JSON endpoint of the portal (pure data, served at ``/api/openapi.json``).

The fuzz test (schemathesis) generates requests from this document against a live server and expects no 5xx.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from dashboards.builtin.openapi import merge_into
from marketing.web import openapi as marketing_openapi
from portal.core.login_plan import CONSENT_KINDS, REQUIRED_CONSENT

bp = Blueprint("openapi", __name__)

#: a coupon issued at the login (the Wi-Fi success page's, only to a member who consented to marketing)
_COUPON = {"type": "object",
           "required": ["code", "title", "kind", "value", "min_spend_cents", "valid_until", "valid_until_local"],
           "properties": {"code": {"type": "string"}, "title": {"type": "string"},
                          "kind": {"type": "string", "enum": ["amount_off", "percent_off", "gift"]},
                          "value": {"type": "integer"}, "min_spend_cents": {"type": "integer"},
                          "valid_until": {"type": "string", "format": "date-time"},
                          "valid_until_local": {"type": "string", "description": "the last valid minute, local"}}}
_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _ERROR for c in codes}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "keliu captive portal", "version": "1"},
    "paths": {
        "/api/captive": {"get": {
            "summary": "RFC 8908 Captive Portal API",
            "responses": {
                "200": {"description": "captive state", "content": {
                    "application/captive+json": {"schema": {"$ref": "#/components/schemas/Captive"}},
                    "application/json": {"schema": {"$ref": "#/components/schemas/Captive"}}}},
                **_errors(406)}}},
        "/api/login/sms/code": {"post": {
            "summary": "Send an SMS code to a mobile number",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "required": ["phone"],
                "properties": {"phone": {"type": "string", "maxLength": 32, "example": "13812345678"},
                               "lang": {"type": "string", "enum": ["zh-CN", "en"]}}}}}},
            "responses": {
                "202": {"description": "sent", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["sent", "expires_in", "resend_after"],
                    "properties": {"sent": {"type": "boolean"}, "expires_in": {"type": "integer"},
                                   "resend_after": {"type": "integer"}}}}}},
                **_errors(400, 403, 413, 429, 502)}}},
        "/api/login/sms/verify": {"post": {
            "summary": "Verify the code, accept the terms (and optional consents), get online",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "required": ["phone", "code", "consents"],
                "properties": {
                    "phone": {"type": "string", "maxLength": 32},
                    "code": {"type": "string", "pattern": "^[0-9]{6}$"},
                    "lang": {"type": "string", "enum": ["zh-CN", "en"]},
                    "consents": {"type": "object", "additionalProperties": False, "required": [REQUIRED_CONSENT],
                                 "properties": {k: {"type": "boolean"} for k in
                                                CONSENT_KINDS}}}}}}},
            "responses": {
                "200": {"description": "online", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["online", "seconds_remaining", "until"],
                    "properties": {"online": {"type": "boolean"}, "seconds_remaining": {"type": "integer"},
                                   "until": {"type": "string"},
                                   "continue_url": {"type": "string", "nullable": True},
                                   "coupons": {"type": "array", "items": _COUPON}}}}}},
                **_errors(400, 403, 413, 429)}}},
        "/api/session": {"get": {
            "summary": "This device's session",
            "responses": {"200": {"description": "state", "content": {"application/json": {"schema": {
                "type": "object", "required": ["online", "seconds_remaining"],
                "properties": {"online": {"type": "boolean"}, "seconds_remaining": {"type": "integer"},
                               "until": {"type": "string"}, "method": {"type": "string"}}}}}},
                **_errors(403)}}},
        "/api/session/logout": {"post": {
            "summary": "End this device's session and close its internet access",
            "description": "Content-Type must be application/json (an empty body or {}); a request with the Origin "
                           "of another site is refused (403).",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "properties": {}}}}},
            "responses": {"200": {"description": "ended", "content": {"application/json": {"schema": {
                "type": "object", "required": ["online", "ended"],
                "properties": {"online": {"type": "boolean"}, "ended": {"type": "boolean"}}}}}},
                **_errors(400, 403)}}},
    },
    "components": {"schemas": {
        "Error": {"type": "object", "required": ["error", "message"],
                  "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
        "Captive": {"type": "object", "required": ["captive"], "properties": {
            "captive": {"type": "boolean"}, "user-portal-url": {"type": "string"},
            "venue-info-url": {"type": "string"}, "seconds-remaining": {"type": "integer"},
            "can-extend-session": {"type": "boolean"}}},
    }},
}


def served_document() -> dict[str, Any]:
    """The portal's document plus the built-in dashboard's and marketing's ``/api/v1`` paths."""
    return marketing_openapi.merge_into(merge_into(DOCUMENT))


@bp.route("/api/openapi.json")
def document() -> Any:
    return jsonify(served_document())
