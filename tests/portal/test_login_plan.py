"""The login plan (pure): the login's inputs in, everything it stores out, compared with ``==``."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.core.i18n import CATALOG, CONSENT_VERSIONS
from portal.core.login_plan import (
    CONSENT_KINDS,
    MEMBER_PAGE_CONSENTS,
    OPTIONAL_CONSENTS,
    Choices,
    ConsentRow,
    LoginPlan,
    PhoneMember,
    RegistryChange,
    UseCode,
    UseNonce,
    WechatMember,
    plan_login,
)
from portal.core.sessions import Policy
from portal.errors import ConsentMissing
from portal.wechat.extend import CHOICE_BITS

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
POLICY = Policy(session_s=3600, idle_s=900, reauth_s=86400)
VERSIONS = {"terms": "t1", "marketing": "m1", "analytics": "a1", "reauth": "r1"}


CODE = UseCode(7, 5)
PHONE = PhoneMember("+8613812345678")


def tplan(choices: Choices, registry_id: str | None = "reg", proof: UseCode | UseNonce = CODE,
          member: PhoneMember | WechatMember = PHONE) -> LoginPlan:
    return plan_login(proof=proof, member=member, method="sms", store_id="s1", now=NOW, device_id="dev", ip="10.0.0.2",
                      lang="en", choices=choices, versions=VERSIONS, registry_id=registry_id, bound_ip="10.0.0.2",
                      lease_tag="tag", policy=POLICY)


def test_an_sms_login_with_every_choice() -> None:
    assert tplan(Choices(True, marketing=True, analytics=True, reauth=True)) == LoginPlan(
        proof=UseCode(7, 5), member=PhoneMember("+8613812345678"), method="sms", store_id="s1", now=NOW,
        device_id="dev", ip="10.0.0.2", lang="en",
        consents=(ConsentRow("terms", "t1", True), ConsentRow("marketing", "m1", True),
                  ConsentRow("analytics", "a1", True), ConsentRow("reauth", "r1", True)),
        registry=RegistryChange("reg", True, NOW.timestamp()), reauth_until=NOW + timedelta(days=1),
        bound_ip="10.0.0.2", lease_tag="tag", until=NOW + timedelta(hours=1))


def test_without_the_optional_choices_they_are_stored_refused_and_withdrawn() -> None:
    plan = tplan(Choices(True))
    assert plan.consents == (ConsentRow("terms", "t1", True), ConsentRow("marketing", "m1", False),
                             ConsentRow("analytics", "a1", False), ConsentRow("reauth", "r1", False))
    assert plan.registry == RegistryChange("reg", False, NOW.timestamp())  # a member's registration withdrawn
    assert plan.reauth_until is None  # re-authorization withdrawn in every store


def test_without_a_mac_nothing_reaches_the_sensor_registry() -> None:
    assert tplan(Choices(True, analytics=True), registry_id=None).registry is None


def test_a_wechat_login_differs_only_in_its_proof_and_member() -> None:
    proof, member = UseNonce("n1", "s1", NOW + timedelta(minutes=2)), WechatMember("wxapp", "openid-1")
    choices = Choices(True, reauth=True)
    plan = tplan(choices, proof=proof, member=member)
    assert plan == LoginPlan(**{**tplan(choices).__dict__, "proof": proof, "member": member})


def test_no_plan_without_the_terms() -> None:
    with pytest.raises(ConsentMissing):
        tplan(Choices(False, marketing=True))


@pytest.mark.parametrize(("ticked", "expected"), [
    (frozenset(), Choices(False)),
    (frozenset({"terms", "analytics"}), Choices(True, analytics=True)),
    ({"terms": True, "reauth": True, "marketing": False}, Choices(True, reauth=True)),
])
def test_choices_of_ticked_kinds(ticked: frozenset[str] | dict[str, bool], expected: Choices) -> None:
    assert Choices.of(ticked) == expected


def test_every_consent_kind_has_a_version_a_text_and_a_bit() -> None:
    # the login's kinds, then the member page's separate ones (never asked at login: no bit, no login text)
    assert tuple(CONSENT_VERSIONS) == (*CONSENT_KINDS, *MEMBER_PAGE_CONSENTS)
    assert MEMBER_PAGE_CONSENTS == ("presence_offers", "trade_area")
    assert not set(MEMBER_PAGE_CONSENTS) & set(CONSENT_KINDS)
    assert OPTIONAL_CONSENTS == ("marketing", "analytics", "reauth")
    assert tuple(CHOICE_BITS) == CONSENT_KINDS and CHOICE_BITS == {"terms": 1, "marketing": 2, "analytics": 4,
                                                                   "reauth": 8}  # tokens issued before still read
    for lang in CATALOG:
        assert all(CATALOG[lang].get(kind) for kind in CONSENT_KINDS), lang
    assert [f.name for f in Choices.__dataclass_fields__.values()] == list(CONSENT_KINDS)
