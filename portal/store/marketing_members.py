"""The portal's members as marketing sees them: the adapter behind ``marketing.members.MemberDirectory`` (an
edge: SQL), handed to ``marketing.init_app`` by the factory. Marketing learns member ids and the marketing consent,
never a phone number it did not bring itself."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portal.core import phone as phones
from portal.errors import InvalidPhone
from portal.store.models import consents, members


class PortalMembers:
    """:class:`marketing.members.MemberDirectory` over the portal's ``members`` and ``consents`` tables."""

    def member_by_phone(self, conn: Connection, phone: str) -> int | None:
        try:
            e164 = phones.normalize(phone)
        except InvalidPhone:
            return None
        return conn.execute(sa.select(members.c.id).where(members.c.phone_e164 == e164)).scalar()

    def consents_to_marketing(self, conn: Connection, member_id: int) -> bool:
        granted = conn.execute(sa.select(consents.c.granted).where(
            consents.c.member_id == member_id, consents.c.kind == "marketing")
            .order_by(consents.c.id.desc()).limit(1)).scalar()
        return bool(granted)
