"""The portal's members as marketing sees them: the adapter behind ``marketing.members.MemberDirectory`` (an
edge: SQL), handed to ``marketing.init_app`` by the factory. Marketing learns member ids and the marketing consent,
never a phone number it did not bring itself."""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portal.core import phone as phones_core
from portal.errors import InvalidPhone
from portal.store.models import consents, members


class PortalMembers:
    """:class:`marketing.members.MemberDirectory` over the portal's ``members`` and ``consents`` tables."""

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
