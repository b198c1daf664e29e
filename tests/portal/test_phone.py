"""phone (pure): E.164 normalization with +86 default, mobile only, masking."""
from __future__ import annotations

import pytest

from portal.core.phone import mask, normalize
from portal.errors import InvalidPhone


@pytest.mark.parametrize(("raw", "e164"), [
    ("13812345678", "+8613812345678"),
    (" 138 1234 5678 ", "+8613812345678"),
    ("+86 138-1234-5678", "+8613812345678"),
    ("0086 13812345678", "+8613812345678"),
    ("+85261234567", "+85261234567"),
    ("１３８１２３４５６７８", "+8613812345678"),  # full-width digits from a Chinese IME
])
def test_normalize(raw: str, e164: str) -> None:
    assert normalize(raw) == e164


@pytest.mark.parametrize("raw", ["", "abc", "1381234567", "138123456789", "010-12345678", "+86 10 1234 5678",
                                 "1" * 40, "13812345678; DROP TABLE"])
def test_rejects_what_is_not_a_mobile(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize(raw)


@pytest.mark.parametrize(("e164", "masked"), [("+8613812345678", "138****5678"), ("+85261234567", "852****4567"),
                                              (None, "—")])
def test_mask(e164: str | None, masked: str) -> None:
    assert mask(e164) == masked
