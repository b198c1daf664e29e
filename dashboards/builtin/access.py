"""Who may see which numbers, and which dates were asked for (pure).

Tenancy is decided here and enforced by the API on every request: a store manager sees one store, a mall operator
the stores of one mall and the mall, an admin everything including the operator view. A user who may not see a
store gets :class:`Forbidden` whether or not the store exists, so ids cannot be probed.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Protocol

from dashboards.errors import Forbidden, ReportError

MAX_DAYS = 366


class User(Protocol):
    """What the dashboards need of ``keliu.accounts.users.AdminUser``."""

    name: str
    role: str
    mall_id: str | None
    store_id: str | None

    def can_see_store(self, store_id: str | None, mall_id: str | None) -> bool: ...

    def can_see_mall(self, mall_id: str | None) -> bool: ...


def check_store(user: User, store_id: str, mall_of: Mapping[str, str]) -> str:
    """The store's mall when ``user`` may see the store; else Forbidden (or 404 for an admin and an unknown id)."""
    mall_id = mall_of.get(store_id)
    if mall_id is None or not user.can_see_store(store_id, mall_id):
        if mall_id is None and user.role == "admin":
            raise ReportError(f"no store {store_id!r}", status=404)
        raise Forbidden(f"{user.name} may not see store {store_id!r}")
    return mall_id


def check_mall(user: User, mall_id: str, malls: Mapping[str, str]) -> None:
    if mall_id not in malls or not user.can_see_mall(mall_id):
        if mall_id not in malls and user.role == "admin":
            raise ReportError(f"no mall {mall_id!r}", status=404)
        raise Forbidden(f"{user.name} may not see mall {mall_id!r}")


def check_operator(user: User) -> None:
    if user.role != "admin":
        raise Forbidden(f"{user.name} may not see the operator view")


def home(user: User) -> tuple[str, str | None]:
    """The view a user lands on: ("store", id), ("mall", id) or ("operator", None)."""
    if user.role == "store" and user.store_id:
        return "store", user.store_id
    if user.role == "mall" and user.mall_id:
        return "mall", user.mall_id
    return "operator", None


def parse_range(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """``start``/``end`` as ISO dates, inclusive; missing ones default to today (a one-day view)."""
    try:
        s = date.fromisoformat(start) if start else None
        e = date.fromisoformat(end) if end else None
    except ValueError as exc:
        raise ReportError(f"start/end: expected YYYY-MM-DD, got {start!r}/{end!r}") from exc
    if s is None and e is None:
        s = e = today
    elif s is None:
        s = e
    elif e is None:
        e = s
    assert s is not None and e is not None
    if e < s:
        raise ReportError(f"end {e} is before start {s}")
    if e - s >= timedelta(days=MAX_DAYS):
        raise ReportError(f"at most {MAX_DAYS} days at a time")
    return s, e
