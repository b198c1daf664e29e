"""What marketing needs to know of members, without importing the portal: the :class:`MemberDirectory` and
:class:`MemberTokens` protocols (edges the composition root injects).

The portal owns members, phone numbers and consents; it hands ``marketing.init_app`` an adapter
(``portal.store.marketing_members.PortalMembers``). Marketing keeps member *ids* only: a phone number given to the
API or in a POS file is turned into an id here and never stored by marketing.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Connection


class MemberDirectory(Protocol):
    """Members as the portal keeps them."""

    def member_by_phone(self, conn: Connection, phone: str) -> int | None:
        """The id of the member with this phone number (as typed or as the POS sends it; the directory
        normalizes it to E.164), or ``None``: unknown number, or not a valid mobile number."""
        ...

    def members_by_phones(self, conn: Connection, phones: Sequence[str]) -> dict[str, int]:
        """:meth:`member_by_phone` for many numbers at once (the POS import's batches): raw number → member id,
        for the numbers that are a member's."""
        ...

    def consents_to_marketing(self, conn: Connection, member_id: int) -> bool:
        """Whether the member's latest decision on the ``marketing`` consent is a yes."""
        ...


class MemberTokens(Protocol):
    """The member card's signed, short-lived QR payload (built by the member page), checked at the counter."""

    def member_of(self, token: str, now: datetime) -> int | None:
        """The member id a QR payload proves now, or ``None`` (forged, expired or replayed)."""
        ...


class MemberContacts(Protocol):
    """What a campaign's sends need of members (the portal's adapter, injected by the composition root). Every
    method reads or writes in the caller's transaction."""

    def consents_of(self, conn: Connection, member_id: int) -> tuple[frozenset[str], frozenset[str]]:
        """The marketing purposes (``marketing.core.contact.PURPOSES``) the member granted, and the channels they
        refused (an SMS reply "R", the member page)."""
        ...

    def consents_of_many(self, conn: Connection,
                         member_ids: Sequence[int]) -> Mapping[int, tuple[frozenset[str], frozenset[str]]]:
        """:meth:`consents_of` for many members at once (a batch of sends); a member not answered for granted
        nothing."""
        ...

    def phone_of(self, conn: Connection, member_id: int) -> str | None:
        """The member's E.164 number (read at send time, handed to the SMS gateway, never stored by marketing)."""
        ...

    def wechat_openid_of(self, conn: Connection, member_id: int) -> str | None:
        """The member's openid of the official account that sends template messages."""
        ...

    def member_by_phone(self, conn: Connection, phone: str) -> int | None:
        ...

    def withdraw(self, conn: Connection, member_id: int, purpose: str, now: datetime, source: str) -> None:
        """Record the member's refusal of ``purpose`` (e.g. ``sms_marketing`` after an SMS reply "R"), effective
        for every send decided after this transaction commits."""
        ...


class MemberCards(Protocol):
    """The members' activated WeChat member cards (the portal's adapter, ``portal.wechat.marketing_cards``, injected
    by the composition root when the official account is configured)."""

    def card_of(self, conn: Connection, member_id: int) -> tuple[str, str] | None:
        """(card_id, code) of the member's activated member card in the sending account, or None."""
        ...
