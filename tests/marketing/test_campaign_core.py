"""The pure core of campaigns: holdout assignment, the contact policy, the SMS rules and lift statistics."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import numpy as np
import pytest

from marketing.core import contact, holdout, lift, sms_rules
from marketing.core.contact import ContactPolicy, MemberFacts, Send

ALL = frozenset(contact.PURPOSES)


# --- holdout ---------------------------------------------------------------------------------------------------


def test_holdout_is_deterministic_and_close_to_its_share() -> None:
    arms = [holdout.assign(b"salt-1", m) for m in range(20_000)]
    assert arms == [holdout.assign(b"salt-1", m) for m in range(20_000)]
    share = arms.count("control") / len(arms)
    assert 0.09 < share < 0.11


def test_holdout_arms_are_independent_across_campaigns() -> None:
    a = [holdout.assign(b"campaign-a", m) == "control" for m in range(20_000)]
    b = [holdout.assign(b"campaign-b", m) == "control" for m in range(20_000)]
    both = sum(x and y for x, y in zip(a, b)) / len(a)
    assert 0.005 < both < 0.015  # ~ 0.1 × 0.1, not 0.1


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5])
def test_holdout_rejects_a_share_outside_0_1(share: float) -> None:
    with pytest.raises(ValueError, match="control_share"):
        holdout.assign(b"s", 1, share)


@pytest.mark.parametrize(("value", "seed", "expected"), [
    # PostgreSQL 15's answers to SELECT hashint4extended(value, seed)
    (1, 0, -3670598878359251130),
    (1, 1234567890123, -899875311103157017),
    (2147483647, -5, -6338950646891332599),
    (-7, 42, -7260134608902199406),
])
def test_the_holdout_hash_is_postgresqls_hashint4extended(value: int, seed: int, expected: int) -> None:
    assert holdout.hashint4extended(value, seed) == expected


def test_the_holdout_point_and_threshold_agree_on_both_scales() -> None:
    assert holdout.seed(b"pepper") == holdout.seed(b"pepper") != holdout.seed(b"salt")
    assert -(2**63) <= holdout.seed(b"pepper") < 2**63
    for m in range(1, 2_000):
        h = holdout.hashint4extended(m, holdout.seed(b"pepper"))
        assert (h < holdout.signed_threshold(0.2)) == (holdout.assign(b"pepper", m, 0.2) == "control")
    assert all(holdout.assign(b"pepper", m, 0.0) == "treatment" for m in range(1, 2_000))
    with pytest.raises(ValueError, match="member_id"):
        holdout.point(b"pepper", 2**31)


# --- contact policy --------------------------------------------------------------------------------------------

SH = "Asia/Shanghai"


def at(local_hour: int, minute: int = 0, tz_offset: int = 8) -> datetime:
    """A UTC instant whose local time (UTC+tz_offset) is local_hour:minute on 2026-12-07."""
    return datetime(2026, 12, 7, local_hour, minute, tzinfo=timezone(timedelta(hours=tz_offset))).astimezone(UTC)


def send(channel: contact.Channel = "sms", **kw: object) -> Send:
    return Send(member_id=1, campaign_id=7, channel=channel, store_timezone=str(kw.pop("tz", SH)), **kw)  # type: ignore[arg-type]


def test_a_consented_member_at_noon_may_get_an_sms() -> None:
    assert contact.decide(ContactPolicy(), send(), MemberFacts(ALL), at(12)) == contact.SEND


@pytest.mark.parametrize(("channel", "purpose"), [("sms", "sms_marketing"), ("wechat", "wechat_marketing"),
                                                  ("webhook", "marketing"), ("splash", "marketing")])
def test_each_channel_needs_its_own_consent(channel: contact.Channel, purpose: str) -> None:
    d = contact.decide(ContactPolicy(), send(channel), MemberFacts(ALL - {purpose}), at(12))
    assert d == contact.Decision(False, f"no_consent:{purpose}")


def test_presence_and_trade_area_need_their_separate_consents() -> None:
    policy = ContactPolicy()
    d = contact.decide(policy, send(presence_triggered=True), MemberFacts(ALL - {"presence_offers"}), at(12))
    assert d.reason == "no_consent:presence_offers"
    d = contact.decide(policy, send(trade_area=True), MemberFacts(ALL - {"trade_area"}), at(12))
    assert d.reason == "no_consent:trade_area"


def test_a_withdrawn_channel_is_suppressed_before_anything_else() -> None:
    d = contact.decide(ContactPolicy(), send(), MemberFacts(ALL, withdrawn_channels=frozenset({"sms"})), at(12))
    assert d.reason == "withdrawn"


@pytest.mark.parametrize(("hour", "minute", "quiet"), [(19, 59, False), (20, 0, True), (23, 59, True), (0, 1, True),
                                                       (7, 59, True), (8, 0, False)])
def test_quiet_hours_are_the_store_local_20_to_08(hour: int, minute: int, quiet: bool) -> None:
    d = contact.decide(ContactPolicy(), send(), MemberFacts(ALL), at(hour, minute))
    assert (d.reason == "quiet_hours") is quiet
    if quiet:
        assert d.not_before is not None and d.not_before.astimezone(timezone(timedelta(hours=8))).hour == 8
        assert d.not_before > at(hour, minute)


def test_quiet_hours_follow_a_store_west_of_utc() -> None:
    ny = "America/New_York"  # UTC-5 in December
    assert contact.decide(ContactPolicy(), send(tz=ny), MemberFacts(ALL), at(21, tz_offset=-5)).reason == "quiet_hours"
    assert contact.decide(ContactPolicy(), send(tz=ny), MemberFacts(ALL), at(10, tz_offset=-5)).send
    # 10:00 in New York is 23:00 in Shanghai: the store's zone decides, not the server's or Beijing's
    assert contact.decide(ContactPolicy(), send(tz=SH), MemberFacts(ALL), at(10, tz_offset=-5)).reason == "quiet_hours"


@pytest.mark.parametrize(("hour", "minute", "reason"), [
    (19, 59, None), (20, 0, "provider_hours"), (21, 30, "provider_hours"), (22, 0, "quiet_hours"),
    (6, 59, "quiet_hours"), (7, 0, "provider_hours"), (7, 59, "provider_hours"), (8, 0, None)])
def test_aliyuns_forbidden_hours_hold_whatever_the_quiet_hours_are(hour: int, minute: int,
                                                                    reason: str | None) -> None:
    """A policy with quiet hours 22:00–07:00 still sends no Aliyun marketing SMS 20:00–08:00 (``provider_hours``),
    and says when it may go; the SMS channel names the hours from its provider's rules."""
    relaxed = ContactPolicy(quiet_start=time(22, 0), quiet_end=time(7, 0))
    hours = sms_rules.rules_for("aliyun").promo_hours
    d = contact.decide(relaxed, send(provider_hours=hours), MemberFacts(ALL), at(hour, minute))
    assert d.reason == reason
    if reason == "provider_hours":
        assert d.not_before is not None and d.not_before.astimezone(timezone(timedelta(hours=8))).hour == 8
    assert contact.decide(relaxed, send(), MemberFacts(ALL), at(21)).send  # no provider rule: only the policy's
    assert sms_rules.rules_for("tencent").promo_hours is None
    assert (sms_rules.promo_forbidden_until("aliyun", at(hour, minute), SH) is not None) is (
        reason is not None)


def test_the_member_card_needs_wechat_consent_then_a_card() -> None:
    """``wechat_card``: WeChat marketing consent first (and a WeChat refusal covers it), then an activated card
    (``no_card``), then the push rules like any other push (quiet hours, its own cap of 1 a day)."""
    no_card = send("wechat_card", unreachable="no_card")
    assert contact.decide(ContactPolicy(), no_card, MemberFacts(frozenset()), at(12)).reason == (
        "no_consent:wechat_marketing")
    assert contact.decide(ContactPolicy(), no_card, MemberFacts(ALL), at(12)).reason == "no_card"
    refused = MemberFacts(ALL - {"wechat_marketing"}, withdrawn_channels=frozenset({"wechat"}))
    assert contact.decide(ContactPolicy(), send("wechat_card"), refused, at(12)).reason == "withdrawn"
    assert contact.decide(ContactPolicy(), send("wechat_card"), MemberFacts(ALL), at(12)) == contact.SEND
    assert contact.decide(ContactPolicy(), send("wechat_card"), MemberFacts(ALL), at(21)).reason == "quiet_hours"
    once = MemberFacts(ALL, sent_today=1, sent_today_by_channel={"wechat_card": 1})
    assert contact.decide(ContactPolicy(), send("wechat_card"), once, at(12)).reason == "channel_cap"


def test_the_splash_page_is_exempt_from_quiet_hours_and_caps_but_not_consent() -> None:
    facts = MemberFacts(ALL, sent_today=99, sent_today_by_channel={"splash": 99})
    assert contact.decide(ContactPolicy(), send("splash"), facts, at(23)).send
    assert not contact.decide(ContactPolicy(), send("splash"), MemberFacts(frozenset()), at(12)).send


def test_caps_global_and_per_channel() -> None:
    policy = ContactPolicy(daily_cap=3, channel_caps={"sms": 1})
    assert contact.decide(policy, send(), MemberFacts(ALL, sent_today=3), at(12)).reason == "daily_cap"
    facts = MemberFacts(ALL, sent_today=1, sent_today_by_channel={"sms": 1})
    assert contact.decide(policy, send(), facts, at(12)).reason == "channel_cap"
    assert contact.decide(policy, send("wechat"), facts, at(12)).send


def test_cooldown_per_campaign() -> None:
    s = send(cooldown=timedelta(hours=24))
    recent = MemberFacts(ALL, last_sent_for_campaign=at(12) - timedelta(hours=23))
    assert contact.decide(ContactPolicy(), s, recent, at(12)).reason == "cooldown"
    old = MemberFacts(ALL, last_sent_for_campaign=at(12) - timedelta(hours=25))
    assert contact.decide(ContactPolicy(), s, old, at(12)).send


def test_the_local_day_of_the_caps_turns_at_local_midnight() -> None:
    assert str(contact.local_day(at(23, 59), SH)) == "2026-12-07"
    assert str(contact.local_day(at(23, 59) + timedelta(minutes=2), SH)) == "2026-12-08"


def test_bad_policy_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="channel_caps.splash"):
        ContactPolicy(channel_caps={"splash": 1})
    with pytest.raises(ValueError, match="daily_cap"):
        ContactPolicy(daily_cap=-1)
    with pytest.raises(ValueError, match="naive"):
        contact.decide(ContactPolicy(), send(), MemberFacts(ALL), datetime(2026, 12, 7, 12))


# --- SMS rules -------------------------------------------------------------------------------------------------


def test_tencent_refuses_coupon_winback_and_visit_invites_and_wants_its_suffix() -> None:
    for category in ("coupon", "winback", "visit_invite"):
        assert any("forbids" in p for p in sms_rules.problems("tencent", category, "会员日快乐 拒收请回复R"))
    assert sms_rules.problems("tencent", "member_benefit", "会员积分已到账 拒收请回复R") == []
    assert any("suffix" in p for p in sms_rules.problems("tencent", "member_benefit", "会员积分已到账"))
    # a coupon text declared as something else is caught by the words it uses
    assert any("优惠券" in p for p in sms_rules.problems("tencent", "member_benefit", "送您一张优惠券 拒收请回复R"))


def test_aliyun_wants_hui_t_tuiding() -> None:
    assert sms_rules.problems("aliyun", "coupon", "满100减20 回T退订") == []
    assert sms_rules.problems("aliyun", "coupon", "满100减20 拒收请回复R") != []
    with pytest.raises(ValueError, match="sms provider"):
        sms_rules.problems("nosuch", "notice", "x")


@pytest.mark.parametrize(("reply", "refuses"), [("R", True), (" r ", True), ("T", True), ("td", True),
                                                ("ＴＤ", True), ("退订", True), ("好的", False), ("RT", False), ("", False)])
def test_refusal_replies(reply: str, refuses: bool) -> None:
    assert sms_rules.is_refusal(reply) is refuses


# --- lift ------------------------------------------------------------------------------------------------------


def test_lift_of_known_rates() -> None:
    treatment = lift.Outcomes.of([1] * 300 + [0] * 700, [1] * 100 + [0] * 900, [5000] * 100 + [0] * 900)
    control = lift.Outcomes.of([1] * 200 + [0] * 800, [1] * 50 + [0] * 950, [5000] * 50 + [0] * 950)
    report = lift.analyse(treatment, control, cost_cents=100_000)
    assert report.visit_rate.lift.value == pytest.approx(0.5)
    assert report.visit_rate.lift.low is not None and 0.25 < report.visit_rate.lift.low < 0.5
    assert report.incremental_visits.value == pytest.approx(100.0)
    assert report.incremental_revenue_cents.value == pytest.approx(250_000.0)
    assert report.iroas.value == pytest.approx(2.5)
    assert report.as_dict()["visit_rate"]["n_control"] == 1000  # type: ignore[index]


def test_lift_is_undefined_without_control_events_and_empty_arms_are_no_crash() -> None:
    c = lift.compare([1, 0, 1, 0], [0, 0, 0, 0])
    assert c.lift == lift.NONE and c.difference.value == pytest.approx(0.5)
    e = lift.compare([], [1, 0])
    assert e.difference == lift.NONE and e.mean_treatment is None


def test_cuped_narrows_the_interval_and_keeps_the_estimate() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    pre = rng.poisson(2.0, n).astype(float)
    arm = rng.random(n) < 0.5
    y = pre * 0.8 + rng.normal(0, 1, n) + np.where(arm, 0.3, 0.0)
    plain = lift.compare(y[arm], y[~arm])
    adjusted = lift.compare(y[arm], y[~arm], pre[arm], pre[~arm])
    width = lambda e: e.high - e.low
    assert width(adjusted.difference) < 0.7 * width(plain.difference)
    assert adjusted.difference.covers(0.3) and adjusted.difference.value == pytest.approx(0.3, abs=0.05)


def test_interval_coverage_over_simulated_campaigns() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    runs = 300
    for _ in range(runs):
        n = 5_000
        control = rng.random(n) < 0.1
        p = np.where(control, 0.08, 0.08 * 1.25)
        visited = (rng.random(n) < p).astype(float)
        c = lift.compare(visited[~control], visited[control])
        covered += c.lift.covers(0.25)
    assert covered / runs >= 0.92


def test_sample_size_grows_as_the_lift_shrinks_and_matches_a_hand_computation() -> None:
    # baseline 10 %, +20 % (to 12 %), 10 % control, alpha 5 %, power 80 %: (1.96 + 0.8416)^2 × (0.12·0.88/0.9 +
    # 0.1·0.9/0.1) / 0.02^2 = 7.849 × 1.01733 / 0.0004 ≈ 19,963
    assert lift.sample_size(0.10, 0.20) == pytest.approx(19_963, abs=5)
    assert lift.sample_size(0.10, 0.10) > 3 * lift.sample_size(0.10, 0.20)
    with pytest.raises(ValueError, match="relative_lift"):
        lift.sample_size(0.5, 1.5)
