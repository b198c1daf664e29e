"""Campaign execution in-process against real databases and real local servers (a webhook receiver, the fake
WeChat, the console SMS backend): claim → lease → send → mark, once per (campaign, step, member); a send whose
worker died is taken over after its lease, with the same idempotency key; failures are recorded."""
from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keliu.tasks import PortalSms
from keliu.testing.wechat_fake import FakeAccounts, FakeServer
from marketing import execution
from marketing.channels import splash
from marketing.channels.sms import SmsChannel
from marketing.channels.webhook import WebhookChannel
from marketing.channels.wechat import WechatChannel
from marketing.errors import CampaignRefused
from marketing.store import campaign_admin
from marketing.store import tags as member_tags
from marketing.store.campaigns import campaign_members, campaign_sends, campaigns
from marketing.store.erasure import export_member
from portal.edges.sms_backends import ConsoleSms
from portal.store.marketing_members import PortalMembers
from tests.marketing.campaign_kit import ADMIN, consenting_members, new_campaign, send_row
from tests.marketing.conftest import MEMBER_NO, MEMBER_YES, NOW
from tests.marketing.receivers import WebhookReceiver

pytestmark = pytest.mark.integration
TEMPLATES = {"member_benefit": "2000101", "notice": "2000102"}
SMS_TEXT = "会员日全场积分双倍，拒收请回复R"


def tcampaign(engine: Engine, *, trigger: str = "login_first", channel: str = "splash",
              category: str = "member_benefit", message: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None, control_share: float = 0.0, approve: bool = True,
              cooldown_hours: int = 0) -> int:
    return new_campaign(engine, NOW, trigger=trigger, channel=channel, category=category, params=params,
                        message=message, control_share=control_share, cooldown_hours=cooldown_hours,
                        approve=approve, sms_templates=TEMPLATES)


def approve(engine: Engine, cid: int) -> str:
    return campaign_admin.transition(engine, ADMIN, cid, "approve", NOW, None, sms_provider="console",
                                     sms_templates=TEMPLATES)


def deps(engine: Engine, **channels: Any) -> execution.Deps:
    return execution.Deps(engine=engine, contacts=PortalMembers(), channels=channels, lease=timedelta(seconds=60))



def test_splash_message_is_stored_once_and_shown_once(engine: Engine) -> None:
    cid = tcampaign(engine)
    d = deps(engine)
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW).status == "sent"
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW) == execution.Result("duplicate", "sent")
    no = execution.deliver(d, cid, MEMBER_NO, 0, NOW)  # no marketing consent
    assert (no.status, no.reason) == ("suppressed", "no_consent:marketing")
    with engine.begin() as conn:
        got = splash.pending(conn, MEMBER_YES)
        assert [m["text"] for m in got] == ["欢迎回来 welcome back"]
        assert splash.mark_shown(conn, [m["id"] for m in got], NOW) == 1
        assert splash.pending(conn, MEMBER_YES) == []
        assert splash.pending(conn, MEMBER_NO) == []


def test_a_members_export_holds_their_campaign_sends_and_messages(engine: Engine) -> None:
    """The right of access (PIPL art. 45): what campaigns decided for a member is theirs to see."""
    cid = tcampaign(engine)
    d = deps(engine)
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW).status == "sent"
    assert execution.deliver(d, cid, MEMBER_NO, 0, NOW).status == "suppressed"
    with engine.begin() as conn:
        name = conn.execute(sa.select(campaigns.c.name).where(campaigns.c.id == cid)).scalar_one()
        yes, no = export_member(conn, MEMBER_YES), export_member(conn, MEMBER_NO)
    assert [(r["name"], r["channel"], r["status"], r["reason"]) for r in yes["campaign_sends"]] == [
        (name, "splash", "sent", None)]
    assert [r["text"] for r in yes["success_page_messages"]] == ["欢迎回来 welcome back"]
    assert [(r["status"], r["reason"]) for r in no["campaign_sends"]] == [("suppressed", "no_consent:marketing")]
    assert no["success_page_messages"] == [] and no["sms_replies"] == []


def test_webhook_is_signed_and_a_dead_workers_send_is_resent_with_the_same_key(engine: Engine) -> None:
    clock = [NOW.timestamp()]
    with WebhookReceiver(clock=lambda: clock[0]) as rx:
        cid = tcampaign(engine, trigger="scheduled", channel="webhook", params={"send_at": NOW.isoformat()},
                        message={"text": "新品到了", "webhook_url": rx.url})
        with engine.connect() as conn:
            rx.secrets[cid] = conn.execute(sa.select(campaigns.c.webhook_secret)
                                           .where(campaigns.c.id == cid)).scalar_one()
        d = deps(engine, webhook=WebhookChannel(timeout_s=5))
        assert execution.deliver(d, cid, MEMBER_YES, 0, NOW).status == "sent"
        assert (rx.calls, rx.refused, list(rx.delivered)) == (1, 0, [f"keliu-{cid}-0-{MEMBER_YES}"])
        assert rx.delivered[f"keliu-{cid}-0-{MEMBER_YES}"]["member_id"] == MEMBER_YES
        # the worker "died" after the receiver took the message and before it recorded ``sent``
        s = campaign_sends
        with engine.begin() as conn:
            conn.execute(sa.update(s).where(s.c.campaign_id == cid).values(
                status="sending", lease_until=NOW + timedelta(seconds=30)))
        held = execution.deliver(d, cid, MEMBER_YES, 0, NOW)
        assert held.status == "in_flight" and held.retry_in is not None and 30 <= held.retry_in <= 32
        assert rx.calls == 1  # the lease is held: nobody calls the channel
        later = NOW + timedelta(seconds=31)
        clock[0] = later.timestamp()
        assert execution.stale_sends(engine, later, d.lease) == [(cid, MEMBER_YES, 0, "webhook")]
        assert execution.deliver(d, cid, MEMBER_YES, 0, later).status == "sent"
        assert rx.calls == 2 and len(rx.delivered) == 1  # the receiver kept the key once: exactly one message
        row = send_row(engine, cid, MEMBER_YES)
        assert (row["status"], row["attempts"], row["lease_until"]) == ("sent", 2, None)
        # the receiver refuses a request signed with another secret, or too old: a permanent failure, recorded
        assert execution.deliver(d, cid, MEMBER_NO, 0, later).reason == "no_consent:marketing"
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO members (id, created_at, first_store_id, last_seen_at) "
                                 "VALUES (7, :t, 's1', :t)"), {"t": NOW})
            conn.execute(sa.text("INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang) "
                                 "VALUES (7, 'marketing', 'v1', true, :t, 's1', 'zh-CN')"), {"t": NOW})
        clock[0] = later.timestamp() + 301
        assert execution.deliver(d, cid, 7, 0, later) == execution.Result("failed", "refused: HTTP 401")
        assert (rx.refused, len(rx.delivered), send_row(engine, cid, 7)["error"]) == (
            1, 1, "webhook: refused: HTTP 401")


def test_wechat_template_through_the_fake_and_failures_recorded(engine: Engine) -> None:
    acc = FakeAccounts()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE members SET wechat_openid = 'oMEMBER1' WHERE id = :i"), {"i": MEMBER_YES})
    with FakeServer(accounts=acc) as fake:
        ch = WechatChannel(fake.url, acc.oauth_app_id, acc.oauth_secret, timeout_s=5)
        d = deps(engine, wechat=ch)
        cid = tcampaign(engine, trigger="login_return", channel="wechat",
                        message={"text": "积分到账", "wechat_template_id": "TPL1", "wechat_data": {"thing1": "积分到账"},
                                 "url": "https://example.com/m"})
        assert execution.deliver(d, cid, MEMBER_YES, 7, NOW).status == "sent"
        assert [(t["touser"], t["template_id"], t["client_msg_id"], t["data"]) for t in fake.state.templates] == [
            ("oMEMBER1", "TPL1", f"keliu-{cid}-7-{MEMBER_YES}", {"thing1": {"value": "积分到账"}})]
        assert send_row(engine, cid, MEMBER_YES, 7)["provider_ref"] == str(fake.state.templates[0]["msgid"])
        # WeChat's anti-reentry id: the same client_msg_id again is the same message, not a second one
        from marketing.channels import Outgoing
        from marketing.core.campaign_spec import Content
        again = Outgoing(cid, 7, MEMBER_YES, "member_benefit", Content(wechat_template_id="TPL1"),
                         f"keliu-{cid}-7-{MEMBER_YES}", address="oMEMBER1")
        assert ch.send(again, NOW.timestamp()) == str(fake.state.templates[0]["msgid"])
        assert len(fake.state.templates) == 1
        # the member unfollowed (43004): permanent, recorded as failed with the error (and it keeps its place
        # under the day's caps: WeChat's own limits counted it)
        day2, day3 = NOW + timedelta(days=1), NOW + timedelta(days=2)
        fake.app.test_client().post("/fake/control", json={"fail": {"template_send": [43004, "require subscribe"]}})
        assert execution.deliver(d, cid, MEMBER_YES, 8, day2) == execution.Result("failed", "errcode 43004")
        assert send_row(engine, cid, MEMBER_YES, 8)["error"] == "wechat: errcode 43004"
        # system busy (-1): back to reserved, retried later, then sent
        fake.app.test_client().post("/fake/control", json={"fail": {"template_send": [-1, "system busy"]}})
        r = execution.deliver(d, cid, MEMBER_YES, 9, day3)
        assert (r.status, r.retry_in) == ("retry", 2.0)
        assert send_row(engine, cid, MEMBER_YES, 9)["status"] == "reserved"
        assert execution.deliver(d, cid, MEMBER_YES, 9, day3).status == "sent"
        assert len(fake.state.templates) == 2


def test_sms_goes_through_an_approved_template_with_the_refusal_suffix(engine: Engine) -> None:
    out = io.StringIO()
    d = deps(engine, sms=SmsChannel(PortalSms(ConsoleSms(out), "console", TEMPLATES)))
    cid = tcampaign(engine, trigger="lapsed", channel="sms", message={"text": SMS_TEXT, "sms_params": ["双倍"]})
    assert execution.deliver(d, cid, MEMBER_YES, 0, NOW).status == "sent"
    assert f"template 2000101 ['双倍'] (keliu-{cid}-0-{MEMBER_YES})" in out.getvalue()
    assert "13812345678" not in out.getvalue()  # masked
    assert send_row(engine, cid, MEMBER_YES)["provider_ref"] == f"console:keliu-{cid}-0-{MEMBER_YES}"


@pytest.mark.parametrize(("category", "message", "problem"), [
    ("coupon", {"text": "送你一张优惠券，拒收请回复R"}, ("category", "err_sms_category")),
    ("member_benefit", {"text": "会员日全场积分双倍"}, ("message", "err_sms_suffix")),
    ("member_benefit", {"text": "好久不见，回来看看吧，拒收请回复R"}, ("message", "err_sms_words")),
    ("visit_invite", {"text": "欢迎到店，拒收请回复R"}, ("category", "err_sms_category")),
])
def test_approval_refuses_sms_the_provider_forbids(engine: Engine, category: str, message: dict[str, str],
                                                   problem: tuple[str, str]) -> None:
    cid = tcampaign(engine, channel="sms", category=category, message=message, approve=False)
    with pytest.raises(CampaignRefused) as exc:
        approve(engine, cid)
    assert exc.value.key == "err_approval" and problem in [(p.field, p.key) for p in exc.value.problems]
    # a draft sends nothing
    assert execution.deliver(deps(engine), cid, MEMBER_YES, 0, NOW).status == "inactive"


def test_pause_stops_sends_and_resume_checks_again(engine: Engine) -> None:
    cid = tcampaign(engine)
    assert campaign_admin.transition(engine, ADMIN, cid, "pause", NOW, None) == "paused"
    assert execution.deliver(deps(engine), cid, MEMBER_YES, 0, NOW).status == "inactive"
    with pytest.raises(CampaignRefused, match="err_transition"):
        campaign_admin.transition(engine, ADMIN, cid, "pause", NOW, None)  # not approved: nothing to pause
    assert approve(engine, cid) == "approved"  # resuming is approving again (the rules checked again)
    assert campaign_admin.transition(engine, ADMIN, cid, "archive", NOW, None) == "archived"
    with pytest.raises(CampaignRefused, match="err_transition"):
        approve(engine, cid)


def test_presence_trigger_needs_the_presence_consent(engine: Engine) -> None:
    cid = tcampaign(engine, trigger="dwell", params={"dwell_minutes": 15})
    d = deps(engine)
    assert execution.presence_sends(engine, MEMBER_YES, "s1", 14 * 60, NOW) == []
    step = execution.day_step(NOW, "Asia/Shanghai")
    assert execution.presence_sends(engine, MEMBER_YES, "s1", 15 * 60, NOW) == [(cid, "splash", step)]
    r = execution.deliver(d, cid, MEMBER_YES, step, NOW)
    assert (r.status, r.reason) == ("suppressed", "no_consent:presence_offers")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO consents (member_id, kind, version, granted, ts, store_id, lang) "
                             "VALUES (:i, 'presence_offers', 'v1', true, :t, 's1', 'zh-CN')"),
                     {"i": MEMBER_YES, "t": NOW})
    tomorrow = NOW + timedelta(days=1)
    assert execution.deliver(d, cid, MEMBER_YES, execution.day_step(tomorrow, "Asia/Shanghai"),
                             tomorrow).status == "sent"


def test_lapsed_campaign_enrolls_holds_out_and_sends_each_member_once(engine: Engine) -> None:
    old = NOW - timedelta(days=40)
    consenting_members(engine, range(10, 60), old)
    cid = tcampaign(engine, trigger="lapsed", params={"lapsed_days": 30}, control_share=0.3)
    d = deps(engine)
    due = execution.campaign_sends_due(engine, cid, NOW, d.policy)
    assert [m for m, _ in due] == list(range(10, 60))  # members 1 and 2 were seen today
    results = [execution.deliver(d, cid, m, step, NOW).status for m, step in due]
    with engine.connect() as conn:
        arms = dict(conn.execute(sa.select(campaign_members.c.member_id, campaign_members.c.arm)
                                 .where(campaign_members.c.campaign_id == cid)).all())
    assert [r == "control" for r in results] == [arms[m] == "control" for m, _ in due]
    assert 5 <= results.count("control") <= 25 and results.count("sent") == 50 - results.count("control")
    assert execution.campaign_sends_due(engine, cid, NOW, d.policy) == []  # nothing twice
    assert execution.counts(engine, cid)["status"] == {"sent": results.count("sent"),
                                                       "control": results.count("control")}
    # inside the quiet hours (21:00 in Shanghai) a beat campaign waits
    cid2 = tcampaign(engine, trigger="lapsed", channel="webhook",
                     message={"text": "x", "webhook_url": "http://127.0.0.1:9/"})
    assert execution.campaign_sends_due(engine, cid2, NOW.replace(hour=13), d.policy) == []


def test_segments_and_the_expiring_coupon_trigger(engine: Engine) -> None:
    from tests.marketing.conftest import tcoupon, toffer

    d = deps(engine)
    cid = tcampaign(engine, trigger="scheduled", params={"send_at": NOW.isoformat(), "segment": "logins >= 1"})
    assert execution.campaign_sends_due(engine, cid, NOW - timedelta(seconds=1), d.policy) == []  # not yet
    assert execution.campaign_sends_due(engine, cid, NOW, d.policy) == []  # no member logged in
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO logins (ts, store_id, member_id, device_id, method, ip) "
                             "VALUES (:t, 's1', :m, 'd1', 'sms', '10.0.0.2')"), {"t": NOW, "m": MEMBER_NO})
    assert execution.campaign_sends_due(engine, cid, NOW, d.policy) == [(MEMBER_NO, 0)]
    recent = tcampaign(engine, trigger="scheduled", params={"send_at": NOW.isoformat(),
                                                             "segment": "last_visit_days <= 1"})
    assert [m for m, _ in execution.campaign_sends_due(engine, recent, NOW, d.policy)] == [MEMBER_YES, MEMBER_NO]
    offer = toffer(engine)
    code_yes = tcoupon(engine, offer, MEMBER_YES)
    exp = tcampaign(engine, trigger="expiring", params={"offer_id": offer, "expiring_hours": 24})
    assert execution.campaign_sends_due(engine, exp, NOW, d.policy) == []  # 7 days left
    later = NOW + timedelta(days=6)  # the coupon ends at local midnight of its 7th day: 6 hours later
    due = execution.campaign_sends_due(engine, exp, later, d.policy)
    from marketing.store.models import coupons
    with engine.connect() as conn:
        coupon_id = conn.execute(sa.select(coupons.c.id).where(coupons.c.member_id == MEMBER_YES)).scalar_one()
    assert code_yes and due == [(MEMBER_YES, coupon_id)]
    assert execution.deliver(d, exp, MEMBER_YES, coupon_id, later).status == "sent"
    assert execution.campaign_sends_due(engine, exp, later, d.policy) == []


def test_visits_seen_by_analytics_fire_the_dwell_campaign(engine: Engine) -> None:
    from analytics.store import visits

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO member_registry (registry_id, member_id, since) VALUES ('dev1', :m, :t)"),
                     {"m": MEMBER_YES, "t": NOW})
        conn.execute(sa.insert(visits).values(store="s1", device="dev1", start=NOW.timestamp() - 1800,
                                              day=NOW.date(), end=NOW.timestamp() - 60, dwell_s=1740.0,
                                              staff=False, closed=False))
        conn.execute(sa.insert(visits).values(store="s1", device="stranger", start=NOW.timestamp() - 600,
                                              day=NOW.date(), end=NOW.timestamp(), dwell_s=600.0, staff=False,
                                              closed=False))
    since = NOW - timedelta(minutes=10)
    assert execution.presence_seen(engine, since) == []  # no visit or dwell campaign: nothing read
    cid = tcampaign(engine, trigger="dwell", params={"dwell_minutes": 20})
    assert execution.presence_seen(engine, since) == [(MEMBER_YES, "s1", 1740.0)]
    assert execution.presence_sends(engine, MEMBER_YES, "s1", 1740.0, NOW) == [
        (cid, "splash", execution.day_step(NOW, "Asia/Shanghai"))]


def test_a_campaign_made_in_the_console_editor_runs_through_the_contact_policy(engine: Engine) -> None:
    """The one definition and lifecycle: the editor's form (campaign_spec.parse), created and approved by a store
    manager through the console's store (audited), then ``marketing.run_campaign`` on the appliance's Celery app
    (eager) enrolls, decides and sends; the report counts what the executor wrote."""
    from keliu import audit, config
    from keliu.accounts.users import AdminUser
    from keliu.tasks import make_app
    from marketing.channels import splash
    from marketing.core import campaign_spec
    from marketing.store import campaign_report

    boss = AdminUser("boss", "store", mall_id="m1", store_id="s1")
    form = {"name": "好久不见", "scope": "store:s1", "trigger": "lapsed", "lapsed_days": "30",
            "segment": "last_visit_days >= 30\nstore = s1", "channel": "splash", "category": "member_benefit",
            "message": "好久不见，本周会员双倍积分", "consents": ["marketing"], "control_pct": "1",
            "window_days": "7", "cooldown_hours": "0"}
    spec, problems = campaign_spec.parse(form, scopes={"store:s1": ("s1", None)}, offers=frozenset())
    assert spec is not None, problems
    cid = campaign_admin.create(engine, boss, spec, NOW, "10.0.0.9")
    app = make_app(config.load(overrides={"database_url": engine.url.render_as_string(hide_password=False)},
                               env={}))
    later = NOW + timedelta(days=31)
    assert app.tasks["marketing.run_campaign"].delay(cid, later.timestamp()).get() == 0  # a draft sends nothing
    assert campaign_admin.transition(engine, boss, cid, "approve", NOW, "10.0.0.9") == "approved"
    assert app.tasks["marketing.run_campaign"].delay(cid, (NOW + timedelta(days=29)).timestamp()).get() == 0
    assert app.tasks["marketing.run_campaign"].delay(cid, later.timestamp()).get() == 2  # both lapsed members
    with engine.connect() as conn:
        arms = dict(conn.execute(sa.select(campaign_members.c.member_id, campaign_members.c.arm).where(
            campaign_members.c.campaign_id == cid)).tuples().all())
    assert set(arms) == {MEMBER_YES, MEMBER_NO}
    # the member without marketing consent is suppressed with its reason, whatever the arm (intent to treat)
    expected = {"sent" if arms[MEMBER_YES] == "treatment" else "control": 1, "suppressed": 1}
    got = execution.counts(engine, cid)
    assert got["status"] == expected and got["suppressed"] == {"no_consent:marketing": 1}
    # again: nothing twice
    assert app.tasks["marketing.run_campaign"].delay(cid, later.timestamp()).get() == 0
    assert execution.counts(engine, cid)["status"] == expected
    # delivered = what a receiver confirmed: the success page showed the message
    with engine.connect() as conn:
        assert campaign_report.delivered(conn, cid) == 0
    with engine.begin() as conn:
        shown = splash.pending(conn, MEMBER_YES)
        assert [m["text"] for m in shown] == (["好久不见，本周会员双倍积分"] if "sent" in expected else [])
        splash.mark_shown(conn, [m["id"] for m in shown], later)
    with engine.connect() as conn:
        f = campaign_report.figures(conn, cid, 0)
    assert f is not None and (f.sent, f.delivered) == ((1, 1) if "sent" in expected else (0, 0))
    assert sorted(e.action for e in audit.entries(engine) if e.target == f"campaign:{cid}") == [
        "campaign.approve", "campaign.create"]
    from marketing import tasks

    tasks.deps_of(app.tasks["marketing.run_campaign"]).engine.dispose()


@pytest.mark.parametrize("text", [
    "", "logins >= 1", "logins = 0", "visits >= 2", "visits < 2", "purchases = 0", "redemptions != 0",
    "last_visit_days >= 3", "last_visit_days > 3", "last_visit_days <= 2", "last_visit_days = 3",
    "last_visit_days != 3", "last_visit_days < 3", "store = s1", "store != s1", "store = s2 and logins >= 0",
    "tag in vip", "tag in vip, student", "tag in student", "tag not in vip", "tag not in student, staff",
    "tag in nobody", "tag not in nobody", "tag in vip and logins >= 1",
])
def test_segments_in_sql_agree_with_the_pure_predicate(engine: Engine, text: str) -> None:
    """marketing.store.segments renders the editor's segment in SQL; campaign_spec.matches is the same predicate
    on plain values: over the seeded members (one with two Wi-Fi logins), they pick the same members."""
    from marketing.core import campaign_spec
    from marketing.store import segments

    with engine.begin() as conn:
        for i in range(2):
            conn.execute(sa.text("INSERT INTO logins (ts, store_id, member_id, device_id, method, ip) "
                                 "VALUES (:t, 's1', :m, 'd1', 'sms', '10.0.0.2')"),
                         {"t": NOW + timedelta(minutes=i), "m": MEMBER_NO})
        # tags: the first member is a VIP, the second a student and staff
        for m, t in ((MEMBER_YES, "vip"), (MEMBER_NO, "student"), (MEMBER_NO, "staff")):
            member_tags.set_tag(conn, m, t, "test", NOW)
    at = NOW + timedelta(days=3, hours=5)
    facts = {MEMBER_YES: {"store": "s1", "logins": 0, "visits": 0, "purchases": 0, "redemptions": 0,
                          "last_visit_days": 3, "tags": {"vip"}},
             MEMBER_NO: {"store": "s1", "logins": 2, "visits": 2, "purchases": 0, "redemptions": 0,
                         "last_visit_days": 3, "tags": {"student", "staff"}}}
    segment, problems = campaign_spec.parse_segment(text)
    assert problems == []
    with engine.connect() as conn:
        picked = {m for m in facts if segments.member_in(conn, segment, m, at)}
    assert picked == {m for m, f in facts.items() if campaign_spec.matches(segment, f)}
