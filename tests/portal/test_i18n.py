"""i18n (pure): language choice and complete catalogs."""
from __future__ import annotations

import pytest

from portal.core import i18n


@pytest.mark.parametrize(("switch", "cookie", "accept", "lang"), [
    (None, None, None, "zh-CN"),
    (None, None, "en-US,en;q=0.9", "en"),
    (None, None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
    (None, None, "zh-TW", "zh-CN"),
    (None, None, "fr-FR", "zh-CN"),
    (None, None, "fr, en;q=0.5", "en"),
    ("en", None, "zh-CN", "en"),
    (None, "en", "zh-CN", "en"),
    ("zh-CN", "en", "en", "zh-CN"),
    ("xx", None, None, "zh-CN"),
])
def test_pick(switch: str | None, cookie: str | None, accept: str | None, lang: str) -> None:
    assert i18n.pick(switch, cookie, accept) == lang


def test_catalogs_have_the_same_keys() -> None:
    assert set(i18n.CATALOG["zh-CN"]) == set(i18n.CATALOG["en"])


def test_format() -> None:
    assert "7" in i18n.gettext("en", "reauth", days=7)
