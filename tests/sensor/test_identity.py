"""sensor.identity: keyed device ids and the privacy modes' periods (pure)."""
from __future__ import annotations

from sensor.identity import PrivacyPolicy, device_id, mac_bytes, member_device_id, period_key

MASTER = bytes(range(32))
DAY = 86400.0


def test_device_id_is_keyed_and_short() -> None:
    mac = mac_bytes("00:11:22:33:44:55")
    a = device_id(period_key(MASTER, 1), mac)
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != device_id(period_key(MASTER, 2), mac)
    assert a != device_id(period_key(bytes(32), 1), mac)



def test_member_ids_are_stable_and_distinct_from_period_ids() -> None:
    mac = mac_bytes("00:11:22:33:44:55")
    assert member_device_id(MASTER, mac) == member_device_id(MASTER, mac)
    assert member_device_id(MASTER, mac) not in {device_id(period_key(MASTER, p), mac) for p in range(3)}


def test_strict_periods_are_local_days_and_linked_ones_blocks_of_days() -> None:
    strict, linked = PrivacyPolicy(mode="strict"), PrivacyPolicy(mode="linked", link_days=30)
    midnight = 20_000 * DAY - strict.utc_offset_s  # local midnight, day 20,000
    assert (strict.period(midnight - 1), strict.period(midnight)) == (19_999, 20_000)
    assert strict.period_bounds(20_000) == (midnight, midnight + DAY)
    assert linked.period(midnight) == 20_000 // 30
    start, end = linked.period_bounds(20_000 // 30)
    assert start <= midnight < end and end - start == 30 * DAY
