"""The readable form of a member's export (pure): sections in order, a component's section after them, the words
in zh-CN and English."""
from __future__ import annotations

from portal.core import rights_text

EXPORT = {"format": "keliu-member-export/1", "exported_at": "2026-11-18T08:00:00+00:00",
          "member": {"id": 7, "phone": "+8613812345678"}, "consents_now": {"marketing": True},
          "consents": [{"kind": "marketing", "version": "marketing-2026-11", "granted": True}],
          "devices": [], "logins": [], "sessions": [], "sensor_registry": [],
          "wechat": {"identities": [{"openid": "o1"}], "follows": []},
          "marketing": {"coupons": [{"code": "C1"}]}, "kept_by_law": "the access log"}


def test_sections_in_order_with_a_component_after() -> None:
    got = rights_text.sections(EXPORT, "en")
    assert [title for title, _ in got] == ["Membership", "Consent history", "Devices (keyed numbers)", "Logins",
                                           "Wi-Fi sessions", "Visit analytics device ids", "WeChat",
                                           "Kept as the law requires", "marketing"]
    assert got[6][1] == [{"part": "identities", "openid": "o1"}]
    assert got[8][1] == [{"part": "coupons", "code": "C1"}]
    assert got[7][1] == [{"value": "the access log"}]


def test_as_text_in_both_languages() -> None:
    zh = rights_text.as_text(EXPORT, "zh-CN")
    assert zh.startswith("我的数据 — 2026-11-18") and "== 登录记录 ==\n  (无)" in zh
    assert "  id: 7; phone: +8613812345678" in zh
    en = rights_text.as_text(EXPORT, "en")
    assert "== Consent history ==\n  kind: marketing; version: marketing-2026-11; granted: True" in en


def test_every_word_in_both_languages() -> None:
    assert set(rights_text.TEXT["zh-CN"]) == set(rights_text.TEXT["en"])
