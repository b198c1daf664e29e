"""The portal's JSON API (an edge): RFC 8908 Captive Portal API, SMS login, session status and logout.

Described in :mod:`portal.web.openapi`. Bodies must be ``application/json`` objects encoded in UTF-8, at most 16 KiB,
with only the documented fields; anything else is a 4xx with ``{"error": code, "message": ...}``.

CSRF tokens are not used here (apps and scripts call this API without a page). Instead every state-changing
request (anything but GET, HEAD, OPTIONS) must say ``Content-Type: application/json`` (400 otherwise), which a
cross-site page can only send after a CORS preflight, which is refused; and a request that carries an ``Origin``
of another site, or ``Sec-Fetch-Site: cross-site``, is refused (403) before it does anything.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, make_response, request

from portal.core import detect, i18n
from portal.core.login_plan import CONSENT_KINDS, Choices
from portal.core.sessions import seconds_left
from portal.errors import BadRequest, CrossOrigin, UnknownClient
from portal.services import services
from portal.store import access, sms_login
from portal.web.pages import coupon_json, lang, welcome

bp = Blueprint("api", __name__, url_prefix="/api")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin(origin: str, own_hosts: frozenset[str]) -> bool:
    """Whether a request's ``Origin`` is one of the portal's own names, on any port and scheme (the splash on plain
    HTTP may call the API on the HTTPS listener). Never the request's own ``Host`` as such: a DNS-rebound name
    would pass that. ``null`` is never."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in own_hosts


@bp.before_request
def refuse_cross_site() -> None:
    if request.method in SAFE_METHODS:
        return
    if request.mimetype != "application/json":
        raise BadRequest("send the body as application/json", "unsupported_media_type")
    origin = request.headers.get("Origin")
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site" or (
            origin is not None and not same_origin(origin.lower(), services().own_hosts)):
        raise CrossOrigin("this request came from another site's page")


def json_body(fields: dict[str, type | tuple[type, ...]], required: tuple[str, ...]) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise BadRequest("send the body as application/json", "unsupported_media_type")
    raw = request.get_data(cache=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("the body is not UTF-8", "not_utf8") from exc
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest("the body is not valid JSON", "invalid_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", "invalid_json")
    for key, value in data.items():
        if key not in fields:
            raise BadRequest(f"unknown field {key!r}", "unknown_field")
        if not isinstance(value, fields[key]) or (isinstance(value, bool) and fields[key] is not bool):
            raise BadRequest(f"field {key!r} has the wrong type", "invalid_field")
    for key in required:
        if key not in data:
            raise BadRequest(f"field {key!r} is required", "missing_field")
    return data


def _lang(data: dict[str, Any]) -> str:
    value = data.get("lang")
    return value if value in i18n.LANGS else lang()


@bp.route("/captive")
def captive_api() -> Any:
    """RFC 8908: is this client captive, where to log in, how long is left."""
    svc = services()
    ctype = detect.negotiate(request.headers.get("Accept"))
    if ctype is None:
        return jsonify(error="not_acceptable", message="this resource is application/captive+json"), 406
    now = svc.now()
    sess = None
    try:
        client = svc.client()
    except UnknownClient:  # not on the LAN: simply captive
        client = None
    if client is not None:
        with svc.engine.connect() as conn:
            sess = access.active_session(conn, client.device_id, now, client.ip)
    p = svc.cfg.portal
    # RFC 8908 §5: the user portal must be reached over TLS; the HTTPS listener serving this API serves the
    # splash too, so its origin is the portal URL (the plain-HTTP public_url only if the API is not https)
    api = urlsplit(p.api_url)
    portal_url = f"https://{api.netloc}/" if api.scheme == "https" else p.public_url + "/"
    body = detect.api_body(captive=sess is None, user_portal_url=portal_url,
                           venue_info_url=p.venue_info_url or portal_url,
                           seconds_remaining=seconds_left(sess.until, now) if sess is not None else None,
                           can_extend=False)
    resp = make_response(json.dumps(body), 200)
    resp.headers["Content-Type"] = ctype
    resp.headers["Cache-Control"] = "private"
    resp.headers["Vary"] = "Accept"
    return resp


@bp.route("/login/sms/code", methods=["POST"])
def sms_code() -> Any:
    svc = services()
    data = json_body({"phone": str, "lang": str}, ("phone",))
    sms_login.request_code(svc, svc.client(), data["phone"], _lang(data))
    return jsonify(sent=True, expires_in=svc.cfg.sms.code_ttl_s, resend_after=svc.cfg.sms.resend_s), 202


@bp.route("/login/sms/verify", methods=["POST"])
def sms_verify() -> Any:
    svc = services()
    data = json_body({"phone": str, "code": str, "lang": str, "consents": dict}, ("phone", "code", "consents"))
    raw = data["consents"]
    for key, value in raw.items():
        if key not in CONSENT_KINDS:
            raise BadRequest(f"unknown consent {key!r}", "unknown_field")
        if not isinstance(value, bool):
            raise BadRequest(f"consent {key!r} must be true or false", "invalid_field")
    choices = Choices.of(raw)
    now = svc.now()
    auth = sms_login.verify_code(svc, svc.client(), data["phone"], data["code"], choices, _lang(data))
    # the success page's coupons, issued here as there (only with marketing consent): an app that goes on to
    # continue_url has them in hand
    coupons = [coupon_json(c) for c in welcome(auth.member_id)]
    return jsonify(online=True, seconds_remaining=seconds_left(auth.until, now), until=auth.until.isoformat(),
                   continue_url=auth.landing_url, coupons=coupons)


@bp.route("/session")
def session_status() -> Any:
    svc = services()
    now = svc.now()
    client = svc.client()
    with svc.engine.connect() as conn:
        sess = access.active_session(conn, client.device_id, now, client.ip)
    if sess is None:
        return jsonify(online=False, seconds_remaining=0)
    return jsonify(online=True, seconds_remaining=seconds_left(sess.until, now), until=sess.until.isoformat(),
                   method=sess.method)


@bp.route("/session/logout", methods=["POST"])
def session_logout() -> Any:
    if request.get_data(cache=True):
        json_body({}, ())  # an empty object, if any body
    svc = services()
    ended = access.end_device(svc, svc.client(), "logout", svc.now())
    return jsonify(online=False, ended=ended)
