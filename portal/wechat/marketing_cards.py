"""The activated WeChat member cards as marketing's :class:`marketing.members.MemberCards` (an edge: SQL; injected by
the composition root, keliu.tasks, into the campaigns' execution; marketing never imports the portal).

A member's card is the row keliu wrote when it activated it (``wechat_card_members``, :mod:`portal.wechat.
member_card`) for the official account that sends (``[wechat] oauth_app_id``): its template's ``card_id`` and its
code (the member card number). No row: the member has no activated card in that account, and a ``wechat_card``
send is suppressed ``no_card``.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portal.wechat.models import card_members


class PortalCards:
    def __init__(self, app_id: str) -> None:
        self.app_id = app_id

    def card_of(self, conn: Connection, member_id: int) -> tuple[str, str] | None:
        """(card_id, code) of the member's activated card in this account, or None."""
        t = card_members
        row = conn.execute(sa.select(t.c.card_id, t.c.code).where(t.c.app_id == self.app_id,
                                                                 t.c.member_id == member_id)).first()
        return None if row is None else (str(row.card_id), str(row.code))
