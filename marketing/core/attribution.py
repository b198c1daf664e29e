"""Staff attribution (pure): which shop assistant a member is bound to, and which redemptions look wrong.

A member who scans an assistant's card on the member page is bound to that assistant, in that assistant's store,
for ``window_days`` (a per-store setting, 15 by default, like Taobao 微淘's guide binding). The window ends at the end
of the local day in the store's time zone, ``window_days`` after the scan, stored as an absolute instant (so it is
the same day whatever the server's zone). Last touch wins: a later scan of another assistant of the same store takes
the member over, unless the current binding is still inside its protection period (``protection_days``, 0 = none,
Youzan's 保护期), when the scan is refused and the binding stays. A scan of the same assistant renews the window.

Bindings are kept append-only, one row per accepted scan; the assistant in charge at an instant is the one of the
latest scan at or before that instant, if its window has not ended then (:func:`in_charge`). Purchases and
redemptions are attributed with that rule, so an event is credited to whoever held the member *when it happened*.

Flags (:func:`flags_for_redemption`): an assistant who redeems a coupon for a member bound to themselves
(``self_attributed``) or for themselves (``own_coupon``: the member's phone is the assistant's recorded phone),
and an assistant's burst of redemptions (``burst``: ``burst_count`` or more within ``burst_minutes``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from marketing.errors import MarketingError


class AttributionError(MarketingError):
    """A staff card scan that cannot be accepted."""

    status = 409
    code = "attribution_refused"


@dataclass(frozen=True)
class Settings:
    window_days: int = 15
    protection_days: int = 0
    burst_count: int = 5
    burst_minutes: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= 365:
            raise ValueError("window_days must be 1..365")
        if not 0 <= self.protection_days <= self.window_days:
            raise ValueError("protection_days must be 0..window_days")
        if self.burst_count < 2 or self.burst_minutes < 1:
            raise ValueError("a burst is at least 2 redemptions within at least 1 minute")


@dataclass(frozen=True)
class Binding:
    member_id: int
    store_id: str
    staff: str
    bound_at: datetime
    expires_at: datetime
    protected_until: datetime

    def active(self, at: datetime) -> bool:
        return self.bound_at <= at < self.expires_at


@dataclass(frozen=True)
class Refused:
    """The scan changed nothing: ``holder`` keeps the member until ``until``."""

    holder: str
    until: datetime


def end_of_local_day(at: datetime, tz: str, days: int) -> datetime:
    """The instant the local day ``days`` after ``at`` ends in ``tz`` (midnight after it), in UTC."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone).date() + timedelta(days=days + 1)
    return datetime.combine(local, time(0), zone).astimezone(UTC)


def scan(current: Binding | None, member_id: int, store_id: str, staff: str, now: datetime, tz: str,
         settings: Settings) -> Binding | Refused:
    """What a scan of ``staff``'s card by ``member_id`` at ``now`` does, given the member's binding in force in
    that store (``current``, or None): a new binding (to store), or Refused (the protection period holds)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if (current is not None and current.active(now) and current.staff != staff
            and now < current.protected_until):
        return Refused(current.staff, current.protected_until)
    protected = now + timedelta(days=settings.protection_days)
    return Binding(member_id, store_id, staff, now, end_of_local_day(now, tz, settings.window_days), protected)


def in_charge(history: Sequence[Binding], at: datetime) -> Binding | None:
    """The binding that attributes an event at ``at``: the latest scan at or before it, if still in its window.
    ``history`` is one member's bindings in one store, in any order."""
    before = [b for b in history if b.bound_at <= at]
    if not before:
        return None
    latest = max(before, key=lambda b: b.bound_at)
    return latest if latest.active(at) else None


def is_burst(previous: Sequence[datetime], at: datetime, settings: Settings) -> bool:
    """Whether a redemption at ``at`` completes ``burst_count`` redemptions by one assistant within
    ``burst_minutes`` (``previous``: that assistant's earlier redemption times)."""
    since = at - timedelta(minutes=settings.burst_minutes)
    return sum(1 for t in previous if since < t <= at) + 1 >= settings.burst_count


def flags_for_redemption(staff: str, attributed_to: str | None, staff_phone_hash: str | None,
                         member_phone_hash: str | None, previous: Sequence[datetime], at: datetime,
                         settings: Settings) -> tuple[str, ...]:
    """The flags a redemption by ``staff`` raises (empty: nothing suspicious)."""
    out: list[str] = []
    if staff_phone_hash is not None and staff_phone_hash == member_phone_hash:
        out.append("own_coupon")
    if attributed_to == staff:
        out.append("self_attributed")
    if is_burst(previous, at, settings):
        out.append("burst")
    return tuple(out)
