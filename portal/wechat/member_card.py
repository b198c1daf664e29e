"""The member card in WeChat's card holder (an edge: a Flask blueprint and the push that activates a card).

``POST /member/wechat-card`` (a logged-in member, CSRF-checked): the official account's member card template is
created on first use (``card/create``, kept in ``wechat_member_cards``), then a QR code that gives this member's card
with their member card number (``card/qrcode/create``); the page shows it, with a link that opens it inside WeChat.
When the member takes the card, WeChat pushes ``user_get_card`` to the official-account endpoint
(:mod:`portal.wechat.official_account`), and :func:`activate_from_push` activates it (``card/membercard/activate``)
if the card is this account's template and the number is one keliu made (:func:`portal.wechat.card.member_of_number`)
for a member who still exists, and remembers the activated card (``wechat_card_members``: what a campaign's
``wechat_card`` channel updates, :mod:`portal.wechat.marketing_cards`). The bodies and the number are :mod:`portal.wechat.card` (pure), the calls
:mod:`portal.wechat.card_api`.

Offered when WeChat is on, the service account's ``oauth_app_id``/``oauth_secret`` are set and
``[wechat] member_card_logo_url`` names the card's logo (:func:`enabled`).
"""
from __future__ import annotations

import io
import logging
from datetime import datetime
from typing import Any

import segno
import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, make_response, redirect, render_template, url_for
from sqlalchemy.exc import IntegrityError

from keliu import db
from portal.config import WechatConfig
from portal.core import card_text
from portal.services import Services, services
from portal.store.models import members
from portal.web.member import current_member_id, member_required
from portal.web.pages import lang, language_headers
from portal.wechat import card
from portal.wechat.card_api import CardApi
from portal.wechat.models import card_members, member_cards
from portal.wechat.oauth import WechatApiError

log = logging.getLogger("keliu.wechat")
blueprint = Blueprint("wechat_card", __name__, url_prefix="/member/wechat-card")
EXT = "keliu.wechat_card_api"


def enabled(w: WechatConfig) -> bool:
    return bool(w.enabled and w.oauth_app_id and w.oauth_secret and w.member_card_logo_url)


def init_app(app: Flask) -> None:
    """Register the page and one card API client per process (it keeps the access token), when :func:`enabled`."""
    svc: Services = app.extensions["keliu"]
    w = svc.cfg.wechat
    if not enabled(w):
        return
    assert w.oauth_app_id is not None and w.oauth_secret is not None
    app.extensions[EXT] = CardApi(w.api_base, w.oauth_app_id, w.oauth_secret, svc.clock)
    app.register_blueprint(blueprint)


def _api() -> CardApi:
    api: CardApi = current_app.extensions[EXT]
    return api


def template_id(svc: Services, api: CardApi) -> str:
    """The account's member card template, created at WeChat the first time (two racing first requests: the one
    stored first wins, the other template stays unused at WeChat)."""
    with svc.engine.connect() as conn:
        found = conn.execute(sa.select(member_cards.c.card_id).where(member_cards.c.app_id == api.app_id)).scalar()
    if found is not None:
        return str(found)
    w = svc.cfg.wechat
    assert w.member_card_logo_url is not None
    store = svc.cfg.store(svc.store_id)
    brand = svc.cfg.mall(store.mall).name or store.name or store.id
    public = svc.cfg.portal.public_url.rstrip("/")
    card_id = api.create_card(card.create_body(card.CardTemplate(
        brand_name=brand, title="会员卡", logo_url=w.member_card_logo_url, center_url=public + "/member",
        prerogative="会员优惠券与消费记录在会员页查看")))
    try:
        with svc.engine.begin() as conn:
            conn.execute(sa.insert(member_cards).values(app_id=api.app_id, card_id=card_id, created_at=svc.now()))
    except IntegrityError:
        with svc.engine.connect() as conn:
            return str(conn.execute(sa.select(member_cards.c.card_id)
                                    .where(member_cards.c.app_id == api.app_id)).scalar_one())
    log.info("wechat member card template %s created for %s", card_id, api.app_id)
    return card_id


@blueprint.post("")
@member_required
def add() -> Any:
    svc = services()
    member_id = current_member_id()
    assert member_id is not None
    api = _api()
    lg = lang()
    try:
        card_id = template_id(svc, api)
        url = api.card_qrcode(card.qrcode_body(card_id, card.card_number(svc.keys.token, member_id)))
    except WechatApiError as exc:
        log.warning("wechat member card for member %s failed: %s", member_id, exc.errcode)
        return redirect(url_for("member.index", lang=lg, wechat_card="failed"), 303)
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=6, border=4, xmldecl=False)
    html = render_template("wechat/member_card.html", lang=lg, t=lambda k, **kw: card_text.t(lg, k, **kw), url=url,
                           svg=buf.getvalue().decode(), fake=svc.cfg.wechat.fake)
    return language_headers(make_response(html), lg)


def activate_from_push(card_id: str, number: str, event: str) -> bool:
    """``user_get_card`` for ``card_id`` with the code ``number``: activate it when the card is this account's member
    card and the number is a member's (True); anything else is refused and logged (False). WeChat's refusal is logged
    too: the push is answered "success" either way (WeChat would retry it otherwise)."""
    if event != "user_get_card" or current_app.extensions.get(EXT) is None:
        return False
    svc = services()
    api = _api()
    with svc.engine.connect() as conn:
        mine = conn.execute(sa.select(member_cards.c.card_id).where(member_cards.c.app_id == api.app_id)).scalar()
        member_id = card.member_of_number(svc.keys.token, number)
        exists = member_id is not None and conn.execute(
            sa.select(members.c.id).where(members.c.id == member_id)).first() is not None
    if mine is None or card_id != mine or not exists:
        log.warning("wechat user_get_card refused: %s", "not our card" if card_id != mine else "not our number")
        return False
    try:
        api.activate(card.activate_body(card_id, number))
    except WechatApiError as exc:
        log.warning("wechat member card activation for member %s failed: %s", member_id, exc.errcode)
        return False
    assert member_id is not None
    record_activation(svc.engine, api.app_id, member_id, card_id, number, svc.now())
    log.info("wechat member card activated for member %s", member_id)
    return True


def forget_from_push(card_id: str, code: str) -> bool:
    """``user_del_card``: the member removed the card from their card holder; forget it (True when a card of this
    account was known). A retried push finds nothing more to forget."""
    if current_app.extensions.get(EXT) is None:
        return False
    svc = services()
    t = card_members
    with svc.engine.begin() as conn:
        gone = conn.execute(sa.delete(t).where(t.c.app_id == _api().app_id, t.c.card_id == card_id,
                                               t.c.code == code)).rowcount
    log.info("wechat member card removed by its holder: %s", "forgotten" if gone else "not known")
    return bool(gone)


def record_activation(engine: sa.Engine, app_id: str, member_id: int, card_id: str, code: str,
                      now: datetime) -> None:
    """Remember the activated card (what the campaigns' ``wechat_card`` channel updates); a retried push keeps one
    row, with the latest activation."""
    t = card_members
    with engine.begin() as conn:
        conn.execute(db.dialect_insert(conn, t).values(
            app_id=app_id, member_id=member_id, card_id=card_id, code=code, activated_at=now,
        ).on_conflict_do_update(index_elements=[t.c.app_id, t.c.member_id],
                                set_={"card_id": card_id, "code": code, "activated_at": now}))

