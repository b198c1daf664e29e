"""The SMS provider's reply callback (an edge: Flask and SQL): ``POST /api/v1/sms/replies/<provider>/<secret>``.

A reply that refuses marketing ("R", "T", "TD", "N", "退订", "拒收": marketing.core.sms_rules) withdraws the
member's SMS marketing consent in the same transaction that records the reply, so every send decided after it
commits is suppressed (``withdrawn``). A wrong or missing secret, or no secret configured (``[marketing]
callback_secret``), answers 404 and changes nothing; a body that is not the provider's format, 400. A reply
delivered twice is recorded once. Only the member id and whether it refused are stored.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from keliu import db
from marketing.core import sms_replies
from marketing.errors import FieldInvalid
from marketing.store.campaigns import sms_replies as replies_table

log = logging.getLogger("keliu.marketing")
bp = Blueprint("marketing_sms_replies", __name__)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


@bp.post("/api/v1/sms/replies/<provider>/<secret>")
def replies(provider: str, secret: str) -> Response:
    svc = current_app.extensions["keliu.marketing"]
    expected, contacts = current_app.extensions.get("keliu.marketing.sms_replies", (None, None))
    if contacts is None or provider not in sms_replies.PROVIDERS or not sms_replies.secret_matches(expected, secret):
        abort(404)
    try:
        parsed = sms_replies.parse(provider, json.loads(request.get_data() or b"null"))
    except (ValueError, FieldInvalid) as exc:
        return _json({"error": "bad_request", "message": str(exc)}, 400)
    now = svc.now()
    withdrawn = 0
    with svc.engine.begin() as conn:
        for reply in parsed:
            member_id = contacts.member_by_phone(conn, reply.phone)
            t = replies_table
            new = conn.execute(db.dialect_insert(conn, t).values(
                provider=provider, provider_ref=sms_replies.reply_ref(str(expected), provider, reply),
                member_id=member_id, refusal=reply.refusal, received_at=now,
            ).on_conflict_do_nothing(index_elements=[t.c.provider, t.c.provider_ref]).returning(t.c.id)).first()
            if new is not None and member_id is not None and reply.refusal:
                contacts.withdraw(conn, member_id, "sms_marketing", now, f"sms_reply:{provider}")
                withdrawn += 1
    log.info("sms replies from %s: %d, %d refusals withdrew consent", provider, len(parsed), withdrawn)
    return _json(sms_replies.ANSWERS[provider])

