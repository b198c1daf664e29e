"""codes (pure): generation, keyed hashes, the verification decision, resend cooldown and daily cap."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.core import codes
from portal.errors import CodeRejected, RateLimited

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
PEPPER = b"p" * 32
PH = codes.phone_hash(PEPPER, "+8613812345678")


def tstate(code: str = "123456", *, expires_in: float = 300, tries: int = 0, used: bool = False) -> codes.CodeState:
    return codes.CodeState(1, codes.code_hash(PEPPER, PH, code), NOW + timedelta(seconds=expires_in), tries, used)


def test_new_code_is_six_digits_with_leading_zeros() -> None:
    assert codes.new_code(lambda n: 42) == "000042"
    assert codes.valid_format(codes.new_code())


def test_hashes_are_keyed() -> None:
    assert codes.phone_hash(b"a" * 32, "+8613812345678") != codes.phone_hash(b"b" * 32, "+8613812345678")
    assert "13812345678" not in PH


def test_right_code() -> None:
    assert codes.verify(tstate(), codes.code_hash(PEPPER, PH, "123456"), NOW, 5) == "ok"


def test_wrong_code() -> None:
    assert codes.verify(tstate(), codes.code_hash(PEPPER, PH, "654321"), NOW, 5) == "wrong"


@pytest.mark.parametrize(("state", "reason"), [
    (None, "code_not_requested"),
    (tstate(used=True), "code_used"),
    (tstate(expires_in=0), "code_expired"),
    (tstate(expires_in=-1), "code_expired"),
    (tstate(tries=5), "code_locked"),
])
def test_rejections(state: codes.CodeState | None, reason: str) -> None:
    with pytest.raises(CodeRejected) as err:
        codes.verify(state, codes.code_hash(PEPPER, PH, "123456"), NOW, 5)
    assert err.value.code == reason


def test_fifth_try_is_still_allowed() -> None:
    assert codes.verify(tstate(tries=4), codes.code_hash(PEPPER, PH, "123456"), NOW, 5) == "ok"


def test_resend_cooldown() -> None:
    with pytest.raises(RateLimited) as err:
        codes.may_send(NOW - timedelta(seconds=20), 1, 1, NOW, 60, 10, 50)
    assert err.value.code == "resend_cooldown" and err.value.retry_after == 40
    codes.may_send(NOW - timedelta(seconds=60), 1, 1, NOW, 60, 10, 50)


def test_daily_cap() -> None:
    with pytest.raises(RateLimited) as err:
        codes.may_send(NOW - timedelta(hours=1), 10, 10, NOW, 60, 10, 50)
    assert err.value.code == "daily_cap"


def test_other_devices_codes_count_only_against_the_numbers_cap() -> None:
    codes.may_send(None, 0, 49, NOW, 60, 10, 50)
    with pytest.raises(RateLimited) as err:
        codes.may_send(None, 0, 50, NOW, 60, 10, 50)
    assert err.value.code == "daily_cap"


@pytest.mark.parametrize(("code", "ok"), [("123456", True), ("12345", False), ("1234567", False), ("12345a", False),
                                          ("１２３４５６", False)])
def test_format(code: str, ok: bool) -> None:
    assert codes.valid_format(code) is ok
