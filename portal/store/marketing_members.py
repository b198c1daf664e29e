"""The portal's members as marketing sees them: the adapter behind ``marketing.members.MemberDirectory`` (an
edge: SQL), handed to ``marketing.init_app`` by the factory. Marketing learns member ids and the marketing consent,
never a phone number it did not bring itself."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portal.core import phone as phones_core
from portal.errors import InvalidPhone
from portal.store.models import consents, members


class PortalMembers:
    """:class:`marketing.members.MemberDirectory` and :class:`marketing.members.MemberContacts` over the portal's
    ``members`` and ``consents`` tables."""

    def member_by_phone(self, conn: Connection, phone: str) -> int | None:
        try:
            e164 = phones_core.normalize(phone)
        except InvalidPhone:
            return None
        return conn.execute(sa.select(members.c.id).where(members.c.phone_e164 == e164)).scalar()

    def members_by_phones(self, conn: Connection, phones: Sequence[str]) -> dict[str, int]:
        e164: dict[str, list[str]] = {}
        for raw in phones:
            try:
                e164.setdefault(phones_core.normalize(raw), []).append(raw)
            except InvalidPhone:
                continue
        found = conn.execute(sa.select(members.c.phone_e164, members.c.id)
                             .where(members.c.phone_e164.in_(list(e164)))).all() if e164 else []
        return {raw: int(mid) for number, mid in found for raw in e164[number]}

    def consents_to_marketing(self, conn: Connection, member_id: int) -> bool:
        granted = conn.execute(sa.select(consents.c.granted).where(
            consents.c.member_id == member_id, consents.c.kind == "marketing")
            .order_by(consents.c.id.desc()).limit(1)).scalar()
        return bool(granted)

    # -- marketing.members.MemberContacts: what a campaign's sends need --------------------------------------

    #: purposes a member decides on separately; the SMS and WeChat ones default to the marketing consent until the
    #: member decides on them (an SMS reply "R" is such a decision), presence and trade area need their own yes
    CHANNEL_PURPOSES: ClassVar[Mapping[str, str]] = {"sms_marketing": "sms", "wechat_marketing": "wechat"}
    OWN_PURPOSES: ClassVar[tuple[str, ...]] = ("presence_offers", "trade_area")

    def consents_of(self, conn: Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
        return self.consents_of_many(conn, [member_id])[member_id]

    def consents_of_many(self, conn: Connection,
                         member_ids: Sequence[int]) -> dict[int, tuple[frozenset[str], frozenset[str]]]:
        """Every member's latest decision per purpose, in one statement."""
        kinds = ("marketing", *self.CHANNEL_PURPOSES, *self.OWN_PURPOSES)
        latest: dict[int, dict[str, bool]] = {m: {} for m in member_ids}
        for member_id, kind, granted in conn.execute(sa.select(consents.c.member_id, consents.c.kind,
                                                                consents.c.granted).where(
                consents.c.member_id.in_(list(member_ids)), consents.c.kind.in_(kinds)).order_by(consents.c.id)):
            latest[int(member_id)][str(kind)] = bool(granted)
        return {m: self._purposes(decided) for m, decided in latest.items()}

    @classmethod
    def _purposes(cls, latest: Mapping[str, bool]) -> tuple[frozenset[str], frozenset[str]]:
        refused = frozenset(ch for p, ch in cls.CHANNEL_PURPOSES.items() if latest.get(p) is False)
        if not latest.get("marketing"):
            return frozenset(), refused  # no marketing consent: no marketing purpose at all
        granted_ = {"marketing"}
        granted_ |= {p for p in cls.CHANNEL_PURPOSES if latest.get(p, True)}
        granted_ |= {p for p in cls.OWN_PURPOSES if latest.get(p)}
        return frozenset(granted_), refused

    def phone_of(self, conn: Connection, member_id: int) -> str | None:
        return conn.execute(sa.select(members.c.phone_e164).where(members.c.id == member_id)).scalar()

    def wechat_openid_of(self, conn: Connection, member_id: int) -> str | None:
        return conn.execute(sa.select(members.c.wechat_openid).where(members.c.id == member_id)).scalar()

    def withdraw(self, conn: Connection, member_id: int, purpose: str, now: datetime, source: str) -> None:
        store = conn.execute(sa.select(members.c.first_store_id).where(members.c.id == member_id)).scalar()
        if store is None:
            return
        conn.execute(sa.insert(consents).values(member_id=member_id, kind=purpose, version=source[:32], granted=False,
                                                ts=now, store_id=store, lang="zh-CN", source=source[:64]))
