"""The official-account (公众号) server endpoint: signed pushes in, follow events recorded (core pure, view thin).

WeChat calls the URL configured under 开发 → 基本配置 with ``signature``, ``timestamp`` and ``nonce`` in the query:
a GET with ``echostr`` when the URL is first verified (answer ``echostr`` verbatim), then a POST with an XML body
for every message and event. Every request's signature is checked first (:func:`portal.wechat.sign.
verify_push`); a bad one gets 403 and nothing is parsed. Only plain-text mode is supported: a push in safe mode
(``encrypt_type=aes``) is refused, so configure 明文模式 (docs/WECHAT.md).

``subscribe``/``unsubscribe`` events become rows of ``wechat_follows`` against the member whose WeChat identity has
that openid (when known). ``user_get_card`` (a member took their member card) activates the card
(:func:`portal.wechat.member_card.activate_from_push`; a retried push activates again, which WeChat accepts);
``user_del_card`` (the member removed it) forgets the activated card (:func:`portal.wechat.member_card.
forget_from_push`). Pushes (and the GET verification) whose signed timestamp is more than 5 minutes from the
app's clock are refused, and a retried push is recorded once. The XML is parsed by defusedxml with DTDs forbidden:
the check is made by the parser on the decoded document, so no encoding (UTF-16, UTF-32...) smuggles an entity in.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from flask import Blueprint, Response, current_app, request

from portal.errors import BadRequest
from portal.wechat import member_card
from portal.wechat.sign import verify_push

log = logging.getLogger("keliu.wechat.mp")
MAX_BODY = 64 * 1024
MAX_SKEW_S = 300


@dataclass(frozen=True)
class Push:
    """One parsed push. ``account`` is the official account's original id (ToUserName, ``gh_...``)."""

    account: str
    openid: str
    create_time: int
    msg_type: str
    event: str
    #: a card event's (``user_get_card``): the card template and the code of the card the user took
    card_id: str = ""
    card_code: str = ""


class BadPush(BadRequest):
    """The body is not a push we can read."""


def parse_push(body: bytes) -> Push:
    """Parse the XML of a plain-text-mode push (pure). Refuses DTDs and entities: WeChat never sends one.

    The refusal is the parser's, made on the decoded document: a byte search for ``<!DOCTYPE`` missed the same
    declaration in UTF-16, and the internal entity it declared was expanded into the stored openid.
    """
    if len(body) > MAX_BODY:
        raise BadPush("too large")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadPush("DTD or entity in a push") from exc
    except ParseError as exc:
        raise BadPush("not XML") from exc
    if root.tag != "xml":
        raise BadPush("not a push")

    def text(name: str) -> str:
        node = root.find(name)
        return (node.text or "").strip() if node is not None else ""

    if root.find("Encrypt") is not None:
        raise BadPush("encrypted push (safe mode is not supported)")
    created = text("CreateTime")
    if not _digits(created):
        raise BadPush("no CreateTime")
    return Push(account=text("ToUserName"), openid=text("FromUserName"), create_time=int(created),
                msg_type=text("MsgType"), event=text("Event").lower(), card_id=text("CardId")[:64],
                card_code=text("UserCardCode")[:32])


def fresh(timestamp: str, now: float) -> bool:
    """A push whose signed timestamp is more than 5 minutes off is refused (a captured push cannot be replayed
    later; within the window the dedup key catches it)."""
    return _digits(timestamp) and abs(now - int(timestamp)) <= MAX_SKEW_S


def _digits(value: str) -> bool:
    # str.isdigit alone accepts "²" and 5,000-digit strings, on which int() raises (a 500, not a refusal)
    return 0 < len(value) <= 12 and value.isascii() and value.isdigit()


blueprint = Blueprint("wechat_mp", __name__)


def _token() -> str:
    return str(current_app.extensions["keliu"].cfg.wechat.token or "")


def _signed() -> bool:
    q = request.args
    ok = verify_push(_token(), q.get("timestamp", ""), q.get("nonce", ""), q.get("signature", ""))
    if not ok:
        log.warning("official-account push refused: bad signature from %s", request.remote_addr)
    return ok


def _fresh() -> bool:
    """The signed timestamp is within 5 minutes of the app's (injected) clock; else a captured request replays."""
    ok = fresh(request.args.get("timestamp", ""), current_app.extensions["keliu"].clock())
    if not ok:
        log.warning("official-account %s refused: stale timestamp", request.method)
    return ok


@blueprint.get("/mp")
def verify_url() -> Response:
    if not _signed():
        return Response("forbidden", status=403, mimetype="text/plain")
    if not _fresh():
        return Response("stale", status=403, mimetype="text/plain")
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@blueprint.post("/mp")
def receive() -> Response:
    # a cycle broken on use: the store records a Push (this module's type), this view stores it
    from portal.wechat import store as wechat_store

    if not _signed():
        return Response("forbidden", status=403, mimetype="text/plain")
    if request.args.get("encrypt_type", "raw") != "raw":
        log.warning("official-account push refused: safe mode (encrypt_type) is not supported")
        return Response("unsupported", status=400, mimetype="text/plain")
    if not _fresh():
        return Response("stale", status=403, mimetype="text/plain")
    try:
        push = parse_push(request.stream.read(MAX_BODY + 1))
    except BadPush as exc:
        log.warning("official-account push refused: %s", exc)
        return Response("bad push", status=400, mimetype="text/plain")
    if push.msg_type == "event" and push.event in ("subscribe", "unsubscribe") and push.openid:
        recorded = wechat_store.record_follow_event(push)
        log.info("official account %s: %s (%s)", push.account, push.event, "recorded" if recorded else "retry")
    elif push.msg_type == "event" and push.event == "user_get_card" and push.card_id and push.card_code:
        # a member took their member card from the card QR code: activate it
        member_card.activate_from_push(push.card_id, push.card_code, push.event)
    elif push.msg_type == "event" and push.event == "user_del_card" and push.card_id and push.card_code:
        # the member removed the card from their card holder: campaigns no longer write on it
        member_card.forget_from_push(push.card_id, push.card_code)
    # WeChat wants "success" (or an empty body) within 5 s, or it retries and warns the follower.
    return Response("success", mimetype="text/plain")
