"""Staff attribution (pure): windows, last touch, protection, time zones, flags."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marketing.core import attribution as at
from marketing.core.attribution import Binding, Refused, Settings

SH = "Asia/Shanghai"
S15 = Settings()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def tscan(current: Binding | None, staff: str, now: datetime, settings: Settings = S15,
          tz: str = SH) -> Binding | Refused:
    return at.scan(current, 7, "s1", staff, now, tz, settings)


def test_window_ends_at_the_end_of_the_local_day() -> None:
    # 23:59 in Shanghai on 1 Dec (15:59 UTC): the window ends at midnight Shanghai after 16 Dec
    b = tscan(None, "alice", utc(2026, 12, 1, 15, 59))
    assert isinstance(b, Binding)
    assert b.expires_at == utc(2026, 12, 16, 16, 0)
    # 00:01 in Shanghai on 2 Dec (16:01 UTC on 1 Dec): one local day later, though the UTC date is the same
    b2 = tscan(None, "alice", utc(2026, 12, 1, 16, 1))
    assert isinstance(b2, Binding)
    assert b2.expires_at == utc(2026, 12, 17, 16, 0)


def test_a_store_west_of_utc() -> None:
    # 20:00 in New York on 1 Dec is 01:00 UTC on 2 Dec; the window ends at midnight New York after 16 Dec (EST)
    b = tscan(None, "alice", utc(2026, 12, 2, 1, 0), tz="America/New_York")
    assert isinstance(b, Binding)
    assert b.expires_at == utc(2026, 12, 17, 5, 0)


def test_in_charge_inside_and_after_the_window() -> None:
    b = tscan(None, "alice", utc(2026, 12, 1, 4))
    assert isinstance(b, Binding)
    assert at.in_charge([b], utc(2026, 12, 1, 3)) is None  # before the scan
    assert at.in_charge([b], utc(2026, 12, 16, 15, 59)) == b
    assert at.in_charge([b], b.expires_at) is None
    assert at.in_charge([], utc(2026, 12, 5)) is None


def test_last_touch_wins_without_protection() -> None:
    a = tscan(None, "alice", utc(2026, 12, 1, 4))
    assert isinstance(a, Binding)
    b = tscan(a, "bob", utc(2026, 12, 3, 4))
    assert isinstance(b, Binding) and b.staff == "bob"
    history = [b, a]
    assert at.in_charge(history, utc(2026, 12, 2)) == a  # a purchase before bob's scan stays alice's
    assert at.in_charge(history, utc(2026, 12, 4)) == b


def test_protection_period_keeps_the_member() -> None:
    s = Settings(window_days=15, protection_days=3)
    a = tscan(None, "alice", utc(2026, 12, 1, 4), s)
    assert isinstance(a, Binding)
    refused = tscan(a, "bob", utc(2026, 12, 3, 4), s)
    assert refused == Refused("alice", utc(2026, 12, 4, 4))
    # the same assistant may renew inside the protection period
    renewed = tscan(a, "alice", utc(2026, 12, 3, 4), s)
    assert isinstance(renewed, Binding) and renewed.bound_at == utc(2026, 12, 3, 4)
    taken = tscan(a, "bob", utc(2026, 12, 4, 4), s)
    assert isinstance(taken, Binding) and taken.staff == "bob"


def test_an_expired_binding_does_not_protect() -> None:
    s = Settings(window_days=2, protection_days=2)
    a = tscan(None, "alice", utc(2026, 12, 1, 4), s)
    assert isinstance(a, Binding)
    b = tscan(a, "bob", a.expires_at + timedelta(seconds=1), s)
    assert isinstance(b, Binding) and b.staff == "bob"


def test_settings_are_checked() -> None:
    for bad in ({"window_days": 0}, {"protection_days": 16}, {"protection_days": -1}, {"burst_count": 1}):
        with pytest.raises(ValueError):
            Settings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        at.scan(None, 1, "s1", "alice", datetime(2026, 12, 1), SH, S15)


def test_flags() -> None:
    t = utc(2026, 12, 1, 4)
    s = Settings(burst_count=3, burst_minutes=10)
    assert at.flags_for_redemption("alice", "bob", "h1", "h2", [], t, s) == ()
    assert at.flags_for_redemption("alice", "alice", None, "h2", [], t, s) == ("self_attributed",)
    assert at.flags_for_redemption("alice", None, "h1", "h1", [], t, s) == ("own_coupon",)
    assert at.flags_for_redemption("alice", None, None, None, [], t, s) == ()  # no phone recorded: no match
    recent = [t - timedelta(minutes=9), t - timedelta(minutes=1)]
    assert at.flags_for_redemption("alice", None, None, None, recent, t, s) == ("burst",)
    spread = [t - timedelta(minutes=10), t - timedelta(minutes=1)]
    assert at.flags_for_redemption("alice", None, None, None, spread, t, s) == ()
