"""The marketing package's SQL edge: tables (:mod:`.models`), offers and coupons with their redemption ledger
(:mod:`.coupons`), sales (:mod:`.sales`) and the POS file import (:mod:`.pos_import`), the member erasure hook.

:func:`erase_member` is re-exported here: the member-rights code calls ``marketing.store.erase_member(conn, id)``.
"""
from __future__ import annotations

from marketing.store.erasure import erase_member

__all__ = ["erase_member"]
